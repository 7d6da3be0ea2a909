"""The one engine protocol, and the plain data that crosses it.

An engine turns a tokenized prompt plus sampling parameters into an async stream of
`TokenEvent`s. It knows nothing of HTTP, users or storage. Built-in engines implement
this protocol exactly as a third-party one would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

from mingyan.engine.template import ChatTemplate
from mingyan.errors import ContextLengthError, InvalidRequestError


class FinishReason(str, Enum):
    STOP = "stop"  # end-of-generation token or a stop string
    LENGTH = "length"  # max_tokens or the context limit reached
    CANCELLED = "cancelled"  # the consumer went away


@dataclass(frozen=True)
class Constraint:
    """What the generated text must look like: a GBNF grammar (llama.cpp's grammar syntax).

    With `triggers`, the grammar is lazy: text is free until one of these strings appears in
    the output, and from the start of that string on the output must follow the grammar
    (a tool call after some prose). Without them the whole reply follows it. Engines refuse a
    grammar they cannot parse with InvalidRequestError, before any token.
    """

    grammar: str
    root: str = "root"
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamplingParams:
    """Validated sampling settings (the API layer checks ranges before building one)."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    seed: int | None = None
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalty_last_n: int = 64
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    constraint: Constraint | None = None  # grammar-constrained decoding


@dataclass(frozen=True)
class GenerationRequest:
    prompt_tokens: tuple[int, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    user: str = ""  # whom to be fair to: requests are served round-robin across users


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TokenEvent:
    """A piece of generated text. The last event of a stream has `finish_reason` and `usage`."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    sha256: str
    n_ctx: int  # context size the engine runs with
    n_ctx_train: int
    architecture: str
    family: str | None = None  # the model family (engine/families.py), None when unknown


@dataclass(frozen=True)
class RequestTiming:
    """How one finished request went, for metrics."""

    model: str
    finish_reason: FinishReason
    queued_s: float  # waiting for a slot
    ttft_s: float | None  # submitted -> first token
    tpot_s: float | None  # mean time per output token after the first
    usage: Usage


@dataclass(frozen=True)
class EngineStats:
    """Counters an operator (or a test) can read while the engine runs."""

    active: int  # requests being generated now
    queued: int  # requests waiting for the engine
    requests_total: int
    cancelled_total: int
    prompt_tokens_total: int
    cached_tokens_total: int
    generated_tokens_total: int
    prefill_tokens_total: int = 0  # prompt tokens actually evaluated (not from cache)


class EventStream(Protocol):
    """What `Engine.generate` returns: async iteration over TokenEvents, and `aclose()`, which
    cancels generation — also when the stream was never iterated. An async generator is one."""

    def __aiter__(self) -> AsyncIterator[TokenEvent]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Engine(Protocol):
    """What every engine provides."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def chat_template(self) -> ChatTemplate | None:
        """The model's chat template, or None when its file carries none."""
        ...

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        """Tokens for `text`. `special`: special-token text becomes control tokens. `bos`: add
        BOS when the model wants one (and the text does not start with it).

        Safe to call from any thread (it reads only the vocabulary).
        """
        ...

    def generate(self, request: GenerationRequest) -> EventStream:
        """Admit `request` now and return its stream (call from the event loop).

        Raises at once, before any token, when the request cannot be served: ContextLengthError,
        EngineBusyError (queue full). Closing the stream early — even before reading it — cancels
        generation; every caller must close it.
        """
        ...

    def stats(self) -> EngineStats: ...

    def close(self) -> None:
        """Stop the engine and free native memory."""
        ...




def check_fits(request: GenerationRequest, n_ctx: int) -> None:
    """Refuse a prompt that cannot fit the context together with its requested completion."""
    n_prompt = len(request.prompt_tokens)
    max_tokens = request.sampling.max_tokens
    if n_prompt == 0:
        raise InvalidRequestError("the prompt is empty", param="prompt")
    if n_prompt >= n_ctx or n_prompt + (max_tokens or 0) > n_ctx:
        raise ContextLengthError(n_prompt, max_tokens, n_ctx)
