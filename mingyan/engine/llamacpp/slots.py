"""One sequence of the shared llama.cpp context, and the request it is serving."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mingyan.engine.base import (
    FinishReason,
    RequestTiming,
    TokenEvent,
    TokenLogprob,
    Usage,
)
from mingyan.engine.llamacpp.jobs import Job
from mingyan.engine.llamacpp.native import NativeModel, Sampler
from mingyan.engine.llamacpp.speculation import DraftControl, NgramIndex, Speculation
from mingyan.engine.text import StopMatcher, Utf8Stream


@dataclass
class Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)  # what sequence `seq_id` holds in the KV cache
    scope: str = ""  # whose tokens they are (GenerationRequest.cache_scope): reused only by the same
    label: str = ""
    keep_state: bool = True  # False once its scope was forgotten while it ran: not saved at the end
    last_used: float = 0.0
    job: Job | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not yet evaluated
    next_token: int | None = None  # sampled, to be evaluated in the next step
    sampler: Sampler | None = None
    spec: Speculation | None = None  # prompt-lookup drafting for this request (None: off)
    cached: int = 0
    generated: int = 0
    limit: int = 0
    started: float = 0.0
    first_token_at: float | None = None
    _utf8: Utf8Stream = field(default_factory=Utf8Stream)
    _stops: StopMatcher = field(default_factory=lambda: StopMatcher(()))
    _held: list[TokenLogprob] = field(default_factory=list)  # log-probabilities of text not yet sent

    @property
    def busy(self) -> bool:
        return self.job is not None

    def start(
        self, job: Job, model: NativeModel, keep: int, n_ctx_seq: int, max_draft: int = 0, model_draft: int = 0
    ) -> None:
        """Take `job`, of whose prompt the first `keep` tokens are in the sequence already;
        `max_draft` > 0 turns on prompt-lookup drafting of up to that many tokens per step,
        `model_draft` > 0 drafting by the draft model."""
        prompt = list(job.request.prompt_tokens)
        params = job.request.sampling
        self.job, self.cached, self.generated = job, keep, 0
        self.scope, self.label, self.keep_state = job.request.cache_scope, job.request.cache_label, True
        self.tokens = prompt[:keep]
        self.pending = prompt[keep:]
        self.next_token = None
        room = n_ctx_seq - len(prompt)
        self.limit = min(params.max_tokens, room) if params.max_tokens else room
        self.sampler = Sampler(model, params, prompt, job.request.logit_bias)
        self.spec = None
        if max_draft > 0 or model_draft > 0:
            by_model = DraftControl(model_draft, length=min(4, model_draft)) if model_draft > 0 else None
            self.spec = Speculation(NgramIndex(prompt), DraftControl(max_draft), by_model)
        self._held = []
        self._utf8, self._stops = Utf8Stream(), StopMatcher(params.stop)
        self.started, self.first_token_at = time.monotonic(), None

    def accept(
        self,
        token: int,
        model: NativeModel,
        stop_ids: frozenset[int],
        logprob: TokenLogprob | None = None,
    ) -> FinishReason | None:
        """Take a sampled token: stream its text; say whether the answer is finished."""
        assert self.job is not None
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        if model.is_eog(token) or token in stop_ids:
            return FinishReason.STOP
        self.generated += 1
        if logprob is not None:
            self._held.append(logprob)
        text, hit = self._stops.feed(self._utf8.feed(model.piece(token)))
        if text:
            self.job.push(TokenEvent(text, logprobs=tuple(self._held)))
            self._held = []
        if hit:  # the matcher holds nothing back after a stop string
            return FinishReason.STOP
        if self.generated >= self.limit:
            return FinishReason.LENGTH
        self.next_token = token
        if self.spec is not None:
            self.spec.index.extend((token,))
        return None

    def draft(self) -> list[int]:
        """Tokens guessed to follow `next_token` (see speculation.py); [] when there is no guess."""
        if self.spec is None:
            return []
        return self.spec.draft(self.limit - self.generated - 1)

    def model_draft_size(self) -> int:
        """How many tokens the draft model should guess for this stream now (0: it does not
        draft now — none is set, or its acceptance was low lately)."""
        if self.spec is None or self.spec.model is None:
            return 0
        return min(self.limit - self.generated - 1, self.spec.model.size())

    def finish(self, reason: FinishReason, model: str) -> RequestTiming:
        """Flush held text, send the final event, and free the request's resources."""
        job = self.job
        assert job is not None
        # Text held back as a possible stop string start is released; an incomplete
        # trailing UTF-8 character is dropped (Utf8Stream keeps it until it completes).
        if reason is not FinishReason.CANCELLED and (tail := self._stops.flush()):
            job.emit(TokenEvent(tail, logprobs=tuple(self._held)))
        self._held = []  # tokens of a stop string: their text is not part of the answer
        usage = Usage(len(job.request.prompt_tokens), self.generated, self.cached)
        now = time.monotonic()
        first = self.first_token_at
        timing = RequestTiming(
            model=model,
            finish_reason=reason,
            usage=usage,
            queued_s=self.started - job.submitted,
            ttft_s=None if first is None else first - job.submitted,
            tpot_s=(now - first) / (self.generated - 1) if first and self.generated > 1 else None,
        )
        self.release()
        job.emit(TokenEvent("", reason, usage))
        return timing

    def release(self) -> None:
        if self.sampler is not None:
            self.sampler.free()
        self.job, self.sampler, self.next_token, self.pending, self.spec = None, None, None, [], None
        self.last_used = time.monotonic()
