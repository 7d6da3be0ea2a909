"""The one engine protocol, and the plain data that crosses it.

An engine turns a tokenized prompt plus sampling parameters into an async stream of
`TokenEvent`s. It knows nothing of HTTP, users or storage. Built-in engines implement
this protocol exactly as a third-party one would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from mingyan.errors import ContextLengthError, InvalidRequestError
from mingyan.formats.grammar import Constraint
from mingyan.formats.template import ChatTemplate
from mingyan.sampling import SamplingSettings

DEFAULTS = SamplingSettings()


class FinishReason(StrEnum):
    STOP = "stop"  # end-of-generation token or a stop string
    LENGTH = "length"  # max_tokens or the context limit reached
    CANCELLED = "cancelled"  # the consumer went away
    CONTENT_FILTER = "content_filter"  # stopped by the output check of the content policy (mingyan.safety)


@dataclass(frozen=True)
class SamplingParams:
    """Validated sampling settings (the API layer checks ranges before building one). The fields and
    defaults are mingyan.sampling's declaration."""

    temperature: float = DEFAULTS.temperature
    top_p: float = DEFAULTS.top_p
    top_k: int = DEFAULTS.top_k
    min_p: float = DEFAULTS.min_p
    seed: int | None = None
    repeat_penalty: float = DEFAULTS.repeat_penalty
    presence_penalty: float = DEFAULTS.presence_penalty
    frequency_penalty: float = DEFAULTS.frequency_penalty
    penalty_last_n: int = 64
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    constraint: Constraint | None = None  # grammar-constrained decoding


@dataclass(frozen=True)
class GenerationRequest:
    prompt_tokens: tuple[int, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    user: str = ""  # whom to be fair to: requests are served round-robin across users
    # Whose KV state this is: a request reuses (and leaves) cached state only within its scope,
    # so one owner's prompts can never be probed through another's cache hits or timing.
    cache_scope: str = ""
    cache_label: str = ""  # e.g. a conversation id: `Engine.forget(scope, label)` drops its states
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias in [-100, 100]) added to the logits
    logprobs: int | None = None  # None: none; k >= 0: each token's log-probability and the top k


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class TopLogprob:
    token: str  # the token's text (bytes that are not valid UTF-8 alone shown as U+FFFD)
    bytes: bytes
    logprob: float  # natural log of its probability under the model (before sampling settings)


@dataclass(frozen=True)
class TokenLogprob(TopLogprob):
    top: tuple[TopLogprob, ...] = ()  # the most likely tokens at that position, most likely first


@dataclass(frozen=True)
class TokenEvent:
    """A piece of generated text. The last event of a stream has `finish_reason` and `usage`.
    With `GenerationRequest.logprobs`, `logprobs` holds the tokens whose text this event releases."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    sha256: str
    n_ctx: int  # context size the engine runs with
    n_ctx_train: int
    architecture: str
    n_vocab: int = 0  # token ids are 0 .. n_vocab - 1 (0: not known)
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
    errors_total: int = 0  # engine failures (a decode step that failed); the requests in it got the error
    last_error: str | None = None  # the latest such failure, for /health
    drafted_tokens_total: int = 0  # speculative decoding: tokens proposed as drafts
    accepted_tokens_total: int = 0  # ... and of those, accepted (each saved one decode step)
    model_drafted_tokens_total: int = 0  # the drafted tokens (above) that the draft model proposed
    model_accepted_tokens_total: int = 0  # ... and of those, accepted


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

    def has_special_text(self, text: str) -> bool:
        """Whether `text` holds the text of a control token (`special=True` would turn it into one).
        Linear in the length of `text`; safe from any thread."""
        ...

    def generate(self, request: GenerationRequest) -> EventStream:
        """Admit `request` now and return its stream (call from the event loop).

        Raises at once, before any token, when the request cannot be served: ContextLengthError,
        EngineBusyError (queue full). Closing the stream early — even before reading it — cancels
        generation; every caller must close it.
        """
        ...

    def stats(self) -> EngineStats: ...

    def forget(self, scope: str, label: str | None = None) -> None:
        """Drop every reusable state (in slots, RAM and on disk) of `scope`, or only those of its
        conversation `label`. Blocking: call it from a worker thread, not the event loop."""
        ...

    def close(self) -> None:
        """Stop the engine and free native memory."""
        ...


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    path: str
    sha256: str
    dimensions: int  # length of every vector
    max_input_tokens: int  # longest input, in tokens (special tokens included)
    n_vocab: int  # token ids given as input must be below this
    pooling: str  # "mean", "cls" or "last": how token states become one vector
    matryoshka: bool = False  # trained so that a prefix of a vector, renormalized, is an embedding


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]  # one per input, in order, each of unit length
    prompt_tokens: int


EmbeddingInput = str | Sequence[int]  # text, or token ids used as given


@runtime_checkable
class Embedder(Protocol):
    """Turns texts (or token ids) into unit-length vectors."""

    @property
    def info(self) -> EmbedderInfo: ...

    async def embed(self, inputs: Sequence[EmbeddingInput], user: str = "") -> Embeddings:
        """Vectors for `inputs` (call from the event loop; the work runs elsewhere). `user`: whom
        to be fair to when requests wait.

        Raises InvalidRequestError (param "input") for an empty input, an input longer than
        `info.max_input_tokens` or a token id outside the vocabulary; EngineBusyError when too
        many requests wait.
        """
        ...

    def close(self) -> None: ...


def check_fits(request: GenerationRequest, n_ctx: int) -> None:
    """Refuse a prompt that cannot fit the context together with its requested completion."""
    n_prompt = len(request.prompt_tokens)
    max_tokens = request.sampling.max_tokens
    if n_prompt == 0:
        raise InvalidRequestError("the prompt is empty", param="prompt")
    if n_prompt >= n_ctx or n_prompt + (max_tokens or 0) > n_ctx:
        raise ContextLengthError(n_prompt, max_tokens, n_ctx)


def check_logit_bias(request: GenerationRequest, n_vocab: int) -> None:
    """Refuse a logit_bias naming a token the vocabulary does not have."""
    bad = [token for token, _ in request.logit_bias if not 0 <= token < n_vocab]
    if bad and n_vocab:
        raise InvalidRequestError(
            f"logit_bias names token {bad[0]}, but this model's token ids are 0 to {n_vocab - 1}.",
            param="logit_bias",
        )
