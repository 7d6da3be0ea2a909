"""A deterministic engine for fast tests of the layers above the engine.

Tokens are Unicode code points. The reply repeats the last user message as
"You said: ..." one character per token, honouring max_tokens, stop strings, the
context limit and cancellation exactly as a real engine must.

Constraints (grammar-constrained decoding): the fake cannot run a GBNF grammar. It records
each request (`requests`, so a test can read `sampling.constraint`), refuses a constraint
whose grammar has no rule for its root with InvalidRequestError as a real engine refuses a
grammar it cannot parse, and otherwise replies as usual. A test that needs a particular
reply (a tool call, a JSON document) passes `replies`: canned texts used in order, one per
request, before the echo resumes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence

from mingyan.engine.base import (
    EngineStats,
    EventStream,
    FinishReason,
    GenerationRequest,
    ModelInfo,
    TokenEvent,
    TokenLogprob,
    TopLogprob,
    Usage,
    check_fits,
    check_logit_bias,
)
from mingyan.engine.text import StopMatcher
from mingyan.errors import EngineBusyError, EngineClosing, InvalidRequestError
from mingyan.formats.template import ChatTemplate

SPECIALS = ("<|im_start|>", "<|im_end|>")
SPECIAL_BASE = 0x110000
_SPECIAL_RE = re.compile("(" + "|".join(re.escape(s) for s in SPECIALS) + ")")
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class FakeEngine:
    def __init__(
        self,
        *,
        name: str = "fake-model",
        n_ctx: int = 512,
        token_delay: float = 0.0,
        max_active: int | None = None,
        replies: Sequence[str] = (),
        family: str | None = None,
    ) -> None:
        self.max_active = max_active
        self.replies = list(replies)  # canned replies, one per request, in order
        self._info = ModelInfo(
            name=name,
            path="(memory)",
            sha256="0" * 64,
            n_ctx=n_ctx,
            n_ctx_train=n_ctx,
            architecture="fake",
            n_vocab=SPECIAL_BASE + len(SPECIALS),
            family=family,
        )
        self._template = ChatTemplate(CHATML)
        self.token_delay = token_delay
        self.requests: list[GenerationRequest] = []
        self.closed = False
        self.cancelled = 0
        self.active = 0
        self.generated = 0
        self.forgotten: list[tuple[str, str | None]] = []  # forget() calls, in order

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def chat_template(self) -> ChatTemplate:
        return self._template

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        """Code points; with `special`, each marker of SPECIALS is one token past Unicode."""
        if not special:
            return [ord(c) for c in text]
        tokens: list[int] = []
        for piece in _SPECIAL_RE.split(text):
            if piece in SPECIALS:
                tokens.append(SPECIAL_BASE + SPECIALS.index(piece))
            else:
                tokens += [ord(c) for c in piece]
        return tokens

    def has_special_text(self, text: str) -> bool:
        return _SPECIAL_RE.search(text) is not None

    @staticmethod
    def detokenize(tokens: Sequence[int]) -> str:
        return "".join(SPECIALS[t - SPECIAL_BASE] if t >= SPECIAL_BASE else chr(t) for t in tokens)

    @staticmethod
    def reply_for(prompt: str) -> str:
        user = prompt.rsplit("<|im_start|>user\n", 1)[-1].split("<|im_end|>", 1)[0]
        return f"You said: {user}"

    def generate(self, request: GenerationRequest) -> EventStream:
        if self.closed:
            raise EngineClosing("the engine is shutting down")
        check_fits(request, self._info.n_ctx)
        check_logit_bias(request, self._info.n_vocab)
        if self.max_active is not None and self.active >= self.max_active:
            raise EngineBusyError("The server is busy. Retry shortly.", retry_after_s=2)
        constraint = request.sampling.constraint
        if constraint is not None and not re.search(rf"(?m)^{re.escape(constraint.root)} ::=", constraint.grammar):
            raise InvalidRequestError("the grammar for this request could not be parsed", param="grammar")
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else None
        return self._stream(request, reply)

    async def _stream(self, request: GenerationRequest, reply: str | None) -> AsyncGenerator[TokenEvent, None]:
        params = request.sampling
        prompt = self.detokenize(request.prompt_tokens)
        room = self._info.n_ctx - len(request.prompt_tokens)
        limit = min(params.max_tokens or room, room)
        stops, produced, finish, hit = StopMatcher(params.stop), 0, FinishReason.STOP, False
        self.active += 1
        try:
            for char in self.reply_for(prompt) if reply is None else reply:
                if produced >= limit:
                    finish = FinishReason.LENGTH
                    break
                await asyncio.sleep(self.token_delay)
                produced += 1
                self.generated += 1
                text, hit = stops.feed(char)
                if text:
                    yield TokenEvent(text, logprobs=self._logprobs(text, request.logprobs))
                if hit:
                    break
            if not hit and (tail := stops.flush()):
                yield TokenEvent(tail)
            yield TokenEvent("", finish, Usage(len(request.prompt_tokens), produced))
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    @staticmethod
    def _logprobs(text: str, top: int | None) -> tuple[TokenLogprob, ...]:
        """The reply is certain here: every character has probability 1 (log 0)."""
        if top is None:
            return ()
        entries = [TopLogprob(c, c.encode(), 0.0) for c in text]
        return tuple(TokenLogprob(e.token, e.bytes, 0.0, (e,) if top else ()) for e in entries)

    def stats(self) -> EngineStats:
        return EngineStats(
            active=self.active,
            queued=0,
            requests_total=len(self.requests),
            cancelled_total=self.cancelled,
            prompt_tokens_total=0,
            cached_tokens_total=0,
            generated_tokens_total=self.generated,
        )

    def forget(self, scope: str, label: str | None = None) -> None:
        """Nothing is cached here; the call is recorded for tests of the callers."""
        self.forgotten.append((scope, label))

    def close(self) -> None:
        self.closed = True  # as the real engine: no request is served after this
