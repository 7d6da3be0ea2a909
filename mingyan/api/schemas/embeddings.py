"""Request and response bodies of POST /v1/embeddings, in OpenAI's shape.

Every field OpenAI defines is honoured; any other field is refused (400 naming it), so a client
never believes an option took effect when it did not.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request
MAX_INPUT_CHARS = 100_000  # per text; the model's token limit is checked after tokenizing
MAX_INPUT_TOKEN_IDS = 100_000  # per token-id input
MAX_TOTAL_TOKENS = 300_000  # OpenAI's limit on tokens summed over a request's inputs

__all__ = ["EmbeddingRequest", "EmbeddingData", "EmbeddingUsage", "EmbeddingList", "MAX_INPUTS", "MAX_TOTAL_TOKENS"]

TokenIds = list[StrictInt]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: StrictStr | list[StrictStr] | TokenIds | list[TokenIds]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, le=1 << 16)
    user: str | None = Field(None, max_length=256)

    @field_validator("input", mode="before")
    @classmethod
    def _shape(cls, value: object) -> object:
        """One clear message (naming `input`) for any shape OpenAI does not define."""
        if isinstance(value, str) or (isinstance(value, list) and _one_shape(value)):
            return value
        raise ValueError("must be a string, a list of strings, a list of token ids or a list of token-id lists")

    @field_validator("input")
    @classmethod
    def _bounded(cls, value: object) -> object:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ValueError("give at least one input")
        if isinstance(items[0], int):  # one token-id list
            items = [items]
        if len(items) > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS} inputs are allowed per request, got {len(items)}")
        for index, item in enumerate(items):
            if isinstance(item, str) and len(item) > MAX_INPUT_CHARS:
                raise ValueError(f"input[{index}] is longer than {MAX_INPUT_CHARS} characters")
            if isinstance(item, str) and not _encodable(item):
                raise ValueError(f"input[{index}] is not valid Unicode (it holds a lone surrogate)")
            if isinstance(item, list) and len(item) > MAX_INPUT_TOKEN_IDS:
                raise ValueError(f"input[{index}] holds more than {MAX_INPUT_TOKEN_IDS} token ids")
        return value

    def inputs(self) -> list[str | list[int]]:
        """The inputs as a list: texts, or token-id lists."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if value and isinstance(value[0], int):
            return [list(value)]
        return list(value)  # type: ignore[arg-type]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_id(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


def _one_shape(items: list) -> bool:
    return (
        all(isinstance(item, str) for item in items)
        or all(_is_id(item) for item in items)
        or all(isinstance(item, list) and all(_is_id(t) for t in item) for item in items)
    )


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64 of little-endian float32 when asked for


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage
