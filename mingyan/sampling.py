"""The ranges of sampling settings that native code can take, declared once.

The OpenAI-compatible requests (api/schemas/openai.py), a conversation's settings in the API
(api/schemas/history.py) and the importers (store/transfer.py) all validate with these, so a value
that one door refuses cannot come in by another.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOPS = 16
MAX_STOP_CHARS = 256
MAX_TOKENS_LIMIT = 1 << 20
STORED_SEED_MAX = 2**31 - 1  # a reply's seed is stored in an INTEGER column

MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]
TopK = Annotated[int, Field(ge=0, le=1000)]
MinP = Annotated[float, Field(ge=0.0, le=1.0)]
Seed = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]
StoredSeed = Annotated[int, Field(ge=0, le=STORED_SEED_MAX)]
RepeatPenalty = Annotated[float, Field(gt=0.0, le=10.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


def check_stops(value: str | list[str] | None) -> str | list[str] | None:
    stops = [value] if isinstance(value, str) else value or []
    if len(stops) > MAX_STOPS:
        raise ValueError(f"at most {MAX_STOPS} stop sequences are allowed")
    if any(len(s) > MAX_STOP_CHARS for s in stops):
        raise ValueError(f"each stop sequence must be at most {MAX_STOP_CHARS} characters")
    return value


class ConversationSettings(BaseModel):
    """A stored conversation's sampling settings (a reply can override any of them); unknown keys
    are refused."""

    model_config = ConfigDict(extra="forbid")

    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    seed: StoredSeed | None = None
    repeat_penalty: RepeatPenalty | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    max_tokens: MaxTokens | None = None
    stop: list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: list[str] | None) -> list[str] | None:
        check_stops(value)
        return [s for s in value if s] if value is not None else None

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)
