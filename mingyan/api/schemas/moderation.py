"""Request and response bodies of POST /v1/moderations, in OpenAI's shape.

Text inputs only (a string or a list of strings); OpenAI's image inputs and any other field are
refused (400 naming it). Category names are OpenAI's; mingyan's own categories map onto them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictStr, field_validator

__all__ = ["ModerationRequest", "ModerationResult", "ModerationResponse", "OPENAI_CATEGORIES", "MODERATION_MODEL"]

MAX_INPUTS = 256
MAX_INPUT_CHARS = 100_000
MODERATION_MODEL = "mingyan-moderation"
# Names clients send for OpenAI's moderation models: answered by mingyan's (the keyword banks and policy).
MODEL_ALIASES = frozenset(
    {MODERATION_MODEL, "omni-moderation-latest", "text-moderation-latest", "text-moderation-stable"}
)
OPENAI_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


class ModerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: StrictStr | list[StrictStr]
    model: str | None = None

    @field_validator("input")
    @classmethod
    def _bounded(cls, value: str | list[str]) -> str | list[str]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ValueError("give at least one input")
        if len(items) > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS} inputs are allowed per request, got {len(items)}")
        if any(len(item) > MAX_INPUT_CHARS for item in items):
            raise ValueError(f"each input is at most {MAX_INPUT_CHARS} characters")
        return value

    def inputs(self) -> list[str]:
        return self.input if isinstance(self.input, list) else [self.input]


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]  # text only, here


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]
