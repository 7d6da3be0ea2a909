"""The sampling fields, declared once: their names, ranges (what native code can take) and defaults.

`SamplingSettings` is the declaration. The others derive from it: the engine's `SamplingParams`
takes its defaults from it, the OpenAI-compatible requests (api/schemas/openai.py) inherit its
fields, and a conversation's settings (`ConversationSettings`: the API's and the importers') are its
fields made optional. So a value one door refuses cannot come in by another, and a default is
written in one place.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

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


class SamplingSettings(BaseModel):
    """The sampling fields every door shares, with their ranges and defaults. (The seed, the length
    limit and stop strings take a different shape at each door and are declared there, with the
    range types above.)"""

    model_config = ConfigDict(frozen=True)

    temperature: Temperature = 0.7
    top_p: TopP = 0.95
    top_k: TopK = 40
    min_p: MinP = 0.05
    repeat_penalty: RepeatPenalty = 1.0
    presence_penalty: Penalty = 0.0
    frequency_penalty: Penalty = 0.0


def _optional_fields(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s fields with the same ranges, each optional and None by default."""
    return {
        name: (Annotated[field.annotation, *field.metadata] | None, None) for name, field in model.model_fields.items()
    }


_SamplingOverrides = cast(type[BaseModel], create_model("_SamplingOverrides", **_optional_fields(SamplingSettings)))


class ConversationSettings(_SamplingOverrides):  # type: ignore[valid-type, misc]
    """A stored conversation's sampling settings (a reply can override any of them): the shared fields
    made optional, plus the stored seed, length and stops; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    seed: StoredSeed | None = None
    max_tokens: MaxTokens | None = None
    stop: list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: list[str] | None) -> list[str] | None:
        check_stops(value)
        return [s for s in value if s] if value is not None else None

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# An MCP tool server's name (as an administrator registered it: docs/tools.md).
ToolServerName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MAX_TOOL_SERVERS = 16


class StoredSettings(ConversationSettings):
    """What a conversation stores as its settings (the API's and the importers' rules): the sampling
    settings, and `tools`, the MCP tool servers switched on for it (by name, sorted, each once),
    which the replies to messages sent without `tools` use."""

    tools: Annotated[list[ToolServerName], Field(max_length=MAX_TOOL_SERVERS)] | None = None

    @field_validator("tools")
    @classmethod
    def _sort_tools(cls, value: list[str] | None) -> list[str] | None:
        return sorted(set(value)) if value is not None else None
