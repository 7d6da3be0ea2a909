"""The llama.cpp engine: one decode thread owns the native context.

Requests arrive on a queue; tokens go back to each caller's event loop through
`call_soon_threadsafe`. The KV cache of the last sequence is kept, so a follow-up turn
whose prompt starts with the previous prompt and answer only evaluates the new suffix
(reuse requires an exact token-prefix match). A caller that stops iterating cancels its
generation within one decode step; a long prefill is interrupted through llama.cpp's
abort callback.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

from mingyan.engine.base import (
    EngineStats,
    FinishReason,
    GenerationRequest,
    ModelInfo,
    TokenEvent,
    Usage,
    check_fits,
)
from mingyan.engine.native import ContextConfig, NativeContext, NativeModel, Sampler
from mingyan.engine.template import ChatTemplate
from mingyan.engine.text import StopMatcher, Utf8Stream
from mingyan.errors import EngineError, MingyanError, ModelError


class _Cancelled(Exception):
    pass


@dataclass
class _Counters:
    """Written only by the decode thread; read (racily but harmlessly) by anyone."""

    requests: int = 0
    cancelled: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0


@dataclass
class _Job:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def emit(self, item: TokenEvent | Exception) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)
        except RuntimeError:  # the caller's loop is gone: nobody is listening
            self.cancelled.set()


class LlamaCppEngine:
    """Runs a GGUF model with llama.cpp on a dedicated thread."""

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        sha256: str = "",
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_batch: int = 512,
        verbose: bool = False,
    ) -> None:
        self._model = NativeModel(path, verbose=verbose)
        n_ctx = min(n_ctx, self._model.n_ctx_train) if self._model.n_ctx_train > 0 else n_ctx
        self._current: _Job | None = None
        try:
            self._ctx = NativeContext(
                self._model,
                ContextConfig(n_ctx=n_ctx, n_batch=min(n_batch, n_ctx), n_threads=n_threads),
                abort_check=self._should_abort,
            )
        except ModelError:
            self._model.free()
            raise
        self._info = ModelInfo(
            name=name,
            path=str(path),
            sha256=sha256,
            n_ctx=self._ctx.n_ctx,
            n_ctx_train=self._model.n_ctx_train,
            architecture=self._model.meta("general.architecture") or "unknown",
        )
        self._template = self._load_template()
        self._kv_tokens: list[int] = []  # tokens whose keys/values sit in sequence 0
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._counts = _Counters()
        self._thread = threading.Thread(target=self._run, name="llama-decode", daemon=True)
        self._thread.start()

    # -- the Engine protocol -------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def chat_template(self) -> ChatTemplate | None:
        return self._template

    def tokenize(self, text: str) -> list[int]:
        bos = self._template.bos_token if self._template else ""
        add_bos = self._model.add_bos and not (bos and text.startswith(bos))
        return self._model.tokenize(text, add_bos=add_bos)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[TokenEvent, None]:
        check_fits(request, self._info.n_ctx)
        job = _Job(request=request, loop=asyncio.get_running_loop())
        self._jobs.put(job)
        try:
            while True:
                item = await job.events.get()
                if isinstance(item, Exception):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            job.cancelled.set()

    def stats(self) -> EngineStats:
        c = self._counts
        return EngineStats(
            active=int(self._current is not None),
            queued=self._jobs.qsize(),
            requests_total=c.requests,
            cancelled_total=c.cancelled,
            prompt_tokens_total=c.prompt_tokens,
            cached_tokens_total=c.cached_tokens,
            generated_tokens_total=c.generated_tokens,
        )

    def close(self) -> None:
        if self._thread.is_alive():
            current = self._current
            if current is not None:
                current.cancelled.set()
            self._jobs.put(None)
            self._thread.join()
        self._ctx.free()
        self._model.free()

    # -- setup -----------------------------------------------------------------------

    def _load_template(self) -> ChatTemplate | None:
        source = self._model.meta("tokenizer.chat_template")
        if not source:
            return None
        return ChatTemplate(
            source,
            bos_token=self._model.token_text(self._model.special_token("bos")),
            eos_token=self._model.token_text(self._model.special_token("eos")),
        )

    # -- the decode thread -----------------------------------------------------------

    def _should_abort(self) -> bool:
        job = self._current
        return job is not None and job.cancelled.is_set()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set():
                continue
            self._current = job
            self._counts.requests += 1
            try:
                job.emit(self._serve(job))
            except _Cancelled:
                self._counts.cancelled += 1
                job.emit(TokenEvent("", FinishReason.CANCELLED))
            except Exception as exc:  # keep serving others; the caller sees the error
                self._ctx.clear()
                self._kv_tokens = []
                job.emit(exc if isinstance(exc, MingyanError) else EngineError(f"generation failed: {exc}"))
            finally:
                self._current = None

    def _serve(self, job: _Job) -> TokenEvent:
        prompt = list(job.request.prompt_tokens)
        cached = self._prefill(job, prompt)
        self._counts.prompt_tokens += len(prompt)
        self._counts.cached_tokens += cached
        params = job.request.sampling
        sampler = Sampler(self._model, params, prompt)
        try:
            generated, finish = self._decode_loop(job, sampler, len(prompt))
        finally:
            sampler.free()
        usage = Usage(prompt_tokens=len(prompt), completion_tokens=generated, cached_tokens=cached)
        return TokenEvent("", finish, usage)

    def _prefill(self, job: _Job, prompt: list[int]) -> int:
        """Bring sequence 0 to `prompt`, reusing the longest common prefix. Returns its length."""
        keep = 0
        limit = min(len(self._kv_tokens), len(prompt) - 1)  # the last token is always evaluated
        while keep < limit and self._kv_tokens[keep] == prompt[keep]:
            keep += 1
        if not self._ctx.seq_rm(0, keep, -1):
            self._ctx.clear()
            keep = 0
        self._kv_tokens = prompt[:keep]
        # Everything but the last token in chunks; the last one alone, so its logits are
        # computed the same way whether or not the prefix came from the cache.
        pos = keep
        while pos < len(prompt) - 1:
            chunk = prompt[pos : min(pos + self._ctx.n_batch, len(prompt) - 1)]
            self._eval(job, chunk, pos, logits=False)
            pos += len(chunk)
        self._eval(job, prompt[-1:], pos, logits=True)
        return keep

    def _eval(self, job: _Job, tokens: list[int], pos: int, *, logits: bool) -> None:
        if job.cancelled.is_set():
            raise _Cancelled
        code = self._ctx.decode(tokens, pos, logits_last=logits)
        if code == 0:
            self._kv_tokens.extend(tokens)
            return
        self._ctx.seq_rm(0, pos, -1)  # drop whatever part of the batch was processed
        if code == 2:
            raise _Cancelled
        raise EngineError(f"llama_decode failed with code {code}")

    def _decode_loop(self, job: _Job, sampler: Sampler, n_prompt: int) -> tuple[int, FinishReason]:
        params = job.request.sampling
        room = self._info.n_ctx - n_prompt
        limit = min(params.max_tokens, room) if params.max_tokens else room
        utf8, stops = Utf8Stream(), StopMatcher(params.stop)
        generated = 0
        while True:
            if job.cancelled.is_set():
                raise _Cancelled
            token = sampler.sample(self._ctx)
            if self._model.is_eog(token):
                finish = FinishReason.STOP
                break
            generated += 1
            self._counts.generated_tokens += 1
            text, hit = stops.feed(utf8.feed(self._model.piece(token)))
            if text:
                job.emit(TokenEvent(text))
            if hit:
                return generated, FinishReason.STOP
            if generated >= limit:
                finish = FinishReason.LENGTH
                break
            self._eval(job, [token], n_prompt + generated - 1, logits=True)
        text, hit = stops.feed(utf8.flush())
        tail = text if hit else text + stops.flush()
        if tail:
            job.emit(TokenEvent(tail))
        return generated, FinishReason.STOP if hit else finish

