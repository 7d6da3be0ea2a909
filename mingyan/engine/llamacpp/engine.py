"""The llama.cpp engine: one decode thread, several slots, one llama_decode per step.

Every step the decode thread builds a single batch holding the next token of each slot
that is generating plus a chunk of the prompt of each slot that is prefilling (chunks are
small while others are generating, so a long prompt does not freeze their streams), runs
one `llama_decode`, and samples every slot that produced logits.

A new request goes to the idle slot that already holds the longest exact prefix of its
prompt, or gets a saved state from the RAM/disk cache restored into a slot; only the rest
of the prompt is evaluated. Reuse never crosses owners: a slot or saved state serves only
requests of the cache scope that computed it. Requests wait in a bounded queue served
round-robin across users. A caller that stops iterating cancels its request within one step; a long prefill
is cut short through llama.cpp's abort callback.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mingyan.engine.base import (
    EngineStats,
    EventStream,
    FinishReason,
    GenerationRequest,
    ModelInfo,
    RequestTiming,
    TokenLogprob,
    TopLogprob,
    check_fits,
    check_logit_bias,
)
from mingyan.engine.llamacpp.config import EngineConfig, auto_slots
from mingyan.engine.llamacpp.counters import Counters
from mingyan.engine.llamacpp.draft_model import MAX_MODEL_DRAFT, DraftSource, open_draft, step_drafts
from mingyan.engine.llamacpp.jobs import FairQueue, Job, JobStream, flush_all
from mingyan.engine.llamacpp.native import (
    ContextConfig,
    NativeContext,
    NativeModel,
    check_grammar,
)
from mingyan.engine.llamacpp.prefix_cache import StateCache, common_prefix
from mingyan.engine.llamacpp.slots import Slot
from mingyan.engine.llamacpp.speculation import share, verify
from mingyan.errors import EngineClosing, EngineError, MingyanError, ModelError, TemplateError
from mingyan.formats.chat_format import resolve_chat_format
from mingyan.formats.template import ChatTemplate

log = logging.getLogger(__name__)
IDLE_WAIT_S = 0.5
RESTORE_MARGIN = 16  # restore a saved state only when it saves this many more tokens
ABORTABLE_BATCH = 32  # batches with this many prompt tokens can be cut short by the abort callback
STEP_DRAFT_BUDGET = 32  # drafted tokens per step, all streams together


Observer = Callable[[RequestTiming], None]  # called on the decode thread: keep it quick


class LlamaCppEngine:
    """Runs a GGUF model with llama.cpp on a dedicated thread, serving several slots."""

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        sha256: str = "",
        config: EngineConfig | None = None,
        observer: Observer | None = None,
        verbose: bool = False,
        context_class: type[NativeContext] = NativeContext,
        draft: DraftSource | None = None,
    ) -> None:
        """`context_class` builds the llama.cpp context (a subclass can wrap its calls, say to inject
        faults); `draft`: a small model of the same vocabulary that drafts tokens (draft_model.py)."""
        cfg = config or EngineConfig()
        self._model = NativeModel(path, verbose=verbose)
        n_ctx = min(cfg.n_ctx, self._model.n_ctx_train) if self._model.n_ctx_train > 0 else cfg.n_ctx
        if cfg.n_slots <= 0:
            cfg = replace(cfg, n_slots=auto_slots(self._model.kv_bytes_per_token * n_ctx, cfg.n_threads))
        self.config = cfg
        self._batch_jobs: list[Job] = []
        self._closing = self._closed = False
        self._ctx = self._open_context(context_class, n_ctx)
        self._info = ModelInfo(
            name=name,
            path=str(path),
            sha256=sha256,
            n_ctx=self._ctx.n_ctx_seq,
            n_ctx_train=self._model.n_ctx_train,
            architecture=self._model.meta("general.architecture") or "unknown",
            n_vocab=self._model.n_vocab,
        )
        try:
            self._template, self._stop_ids = self._load_chat_format(name)
            rollback = self._model.can_roll_back  # drafts need it
            self._drafter = open_draft(draft, self._model, name, self._info, cfg) if draft and rollback else None
        except ModelError:
            self._ctx.free()
            self._model.free()
            raise
        self._special = self._model.special_text()
        self._max_draft = cfg.max_draft if cfg.speculative and self._model.can_roll_back else 0
        self._slots = [Slot(seq_id=i) for i in range(cfg.n_slots)]
        self._queue = FairQueue(cfg.max_queue)
        self._cache = StateCache(
            model_sha256=sha256,
            ram_bytes=cfg.cache_ram_bytes,
            disk_dir=cfg.cache_dir,
            disk_bytes=cfg.cache_disk_bytes,
        )
        self._observer = observer
        self._counts = Counters()
        self._forgets: list[tuple[str, str | None, threading.Event]] = []
        self._forget_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="llama-decode", daemon=True)
        self._thread.start()

    def _open_context(self, context_class: type[NativeContext], n_ctx: int) -> NativeContext:
        """One llama.cpp context holding `n_slots` sequences of `n_ctx` cells (the model is freed
        if it cannot be made)."""
        cfg = self.config
        try:
            return context_class(
                self._model,
                ContextConfig(
                    n_ctx=n_ctx * cfg.n_slots,
                    n_batch=max(cfg.n_batch, cfg.n_slots),
                    n_threads=cfg.n_threads,
                    n_seq_max=cfg.n_slots,
                ),
                abort_check=self._should_abort,
            )
        except ModelError:
            self._model.free()
            raise

    # -- the Engine protocol -------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def chat_template(self) -> ChatTemplate:
        return self._template

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        bos_text = self._template.bos_token
        add_bos = bos and self._model.add_bos and not (bos_text and text.startswith(bos_text))
        if not special or self._special is None:
            return self._model.tokenize(text, add_bos=add_bos, parse_special=special)
        # Control tokens found in one pass: llama.cpp's own parsing is quadratic in their number.
        head = [self._model.special_token("bos")] if add_bos else []
        return head + self._special.tokenize(
            text, lambda piece: self._model.tokenize(piece, add_bos=False, parse_special=False)
        )

    def has_special_text(self, text: str) -> bool:
        if self._special is None:
            return self.tokenize(text, bos=False) != self.tokenize(text, special=False, bos=False)
        return self._special.contains(text)

    def generate(self, request: GenerationRequest) -> EventStream:
        check_fits(request, self._info.n_ctx)
        check_logit_bias(request, self._info.n_vocab)
        if self._closing:
            raise EngineClosing("the engine is shutting down")
        if request.sampling.constraint is not None:  # a bad grammar is a 400 now, not a failed step
            check_grammar(self._model, request.sampling.constraint)
        job = Job(request=request, loop=asyncio.get_running_loop())
        self._queue.put(job, retry_after_s=self._retry_after())
        return JobStream(job, self._queue.wake)

    def stats(self) -> EngineStats:
        active = sum(slot.busy for slot in self._slots)
        return self._counts.stats(active, len(self._queue))

    def forget(self, scope: str, label: str | None = None) -> None:
        """Drop the reusable states of `scope` (or of its conversation `label`): the decode thread
        clears its slots, then RAM entries and files go. Blocking."""
        done = threading.Event()
        with self._forget_lock:
            self._forgets.append((scope, label, done))
        self._queue.wake()
        while self._thread.is_alive() and not done.wait(IDLE_WAIT_S):
            pass
        self._cache.forget(scope, label)

    def close(self) -> None:
        """Stop: end what runs and what waits with an error, save the KV states to disk, free
        native memory. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        for job in self._queue.drain():
            job.emit(EngineClosing("the server is shutting down"))
        self._queue.wake()
        if self._thread.is_alive():
            self._thread.join()
        self._cache.close()
        if self._drafter is not None:
            self._drafter.free()
        self._ctx.free()
        self._model.free()

    # -- setup -----------------------------------------------------------------------

    def _load_chat_format(self, name: str) -> tuple[ChatTemplate, frozenset[int]]:
        model = self._model
        fmt = resolve_chat_format(
            self._info.architecture,
            model.meta("general.name"),
            model.meta("tokenizer.chat_template"),
            label=f"model {name}",
        )
        try:
            template = ChatTemplate(
                fmt.template,
                bos_token=model.token_text(model.special_token("bos")),
                eos_token=model.token_text(model.special_token("eos")),
            )
        except TemplateError as exc:  # a hostile or broken template: refused at load, clearly
            raise ModelError(f"model {name}: {exc}") from exc
        self._info = replace(self._info, family=fmt.family.name if fmt.family else None)
        stop_ids = set()
        for text in fmt.stop_tokens:  # family stops that are single special tokens here
            ids = model.tokenize(text, add_bos=False, parse_special=True)
            if len(ids) == 1 and model.token_text(ids[0]) == text:
                stop_ids.add(ids[0])
        return template, frozenset(stop_ids)

    def _retry_after(self) -> float:
        waiting = len(self._queue) + 1
        return max(1.0, self._counts.busy_s_ewma * waiting / len(self._slots))

    # -- the decode thread -----------------------------------------------------------

    def _should_abort(self) -> bool:
        return self._closing or (bool(self._batch_jobs) and all(j.cancelled.is_set() for j in self._batch_jobs))

    def _run(self) -> None:
        while not self._closing:
            try:
                self._apply_forgets()
                self._admit()
                self._reap_cancelled()
                if not any(slot.busy for slot in self._slots):
                    self._queue.wait(IDLE_WAIT_S)
                    continue
                self._step()
            except Exception as exc:  # keep serving: fail the requests in flight, reset
                log.exception("engine step failed")
                self._fail(self._slots, self._record_error(exc))
        for slot in self._slots:  # closing: end what still runs with an error, not a silent cut
            if slot.busy:
                job = slot.job
                assert job is not None  # a busy slot holds its job
                slot.release()
                job.emit(EngineClosing("the server is shutting down; the answer was cut short"))

    def _admit(self) -> None:
        while any(not slot.busy for slot in self._slots):
            job = self._queue.pop()
            if job is None:
                return
            self._place(job)

    def _place(self, job: Job) -> None:
        """Give `job` the idle slot holding the longest prefix of its prompt (or a saved state)."""
        prompt, scope = job.request.prompt_tokens, job.request.cache_scope
        limit = len(prompt) - 1  # the last prompt token is always evaluated, for its logits
        idle = [slot for slot in self._slots if not slot.busy]
        scored = [  # another owner's tokens are never reused: the slot is cleared (keep 0)
            (min(common_prefix(slot.tokens, prompt), limit) if slot.scope == scope else 0, slot) for slot in idle
        ]
        keep, slot = max(scored, key=lambda pair: (pair[0], -pair[1].last_used))
        entry, entry_keep = self._cache.best(scope, prompt, limit)
        if entry is not None and entry_keep > keep + RESTORE_MARGIN:
            slot = min(idle, key=lambda s: (len(s.tokens) > 0, s.last_used))  # empty, else LRU
            keep = self._restore(slot, entry, entry_keep)
        if not self._ctx.seq_rm(slot.seq_id, keep, -1):
            self._ctx.seq_rm(slot.seq_id, -1, -1)
            keep = 0
        model_draft = min(MAX_MODEL_DRAFT, self.config.max_draft) if self._drafter is not None else 0
        slot.start(job, self._model, keep, self._info.n_ctx, self._max_draft, model_draft)
        self._counts.requests += 1
        self._counts.prompt_tokens += len(prompt)
        self._counts.cached_tokens += keep

    def _restore(self, slot: Slot, entry, keep: int) -> int:
        state = self._cache.load(entry)
        self._ctx.seq_rm(slot.seq_id, -1, -1)
        if state is None or not self._ctx.state_set(slot.seq_id, state):
            self._ctx.seq_rm(slot.seq_id, -1, -1)
            slot.tokens = []
            return 0
        slot.tokens = list(entry.tokens)  # the entry is of the request's scope (StateCache.best)
        return keep

    def _reap_cancelled(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.job.cancelled.is_set():  # busy and cancelled
                self._finish(slot, FinishReason.CANCELLED)

    def _step(self) -> None:
        """One llama_decode for every busy slot (each generating slot's next token and its draft,
        prompt chunks of the prefilling ones), then sampling."""
        ctx = self._ctx
        runs: list[tuple[Slot, int, list[int], bool]] = []  # (slot, batch index of its first logits, draft, by model)
        added: list[tuple[Slot, list[int], bool]] = []  # (slot, tokens, from the prompt)
        decoding = [s for s in self._slots if s.busy and s.next_token is not None]
        budget = min(STEP_DRAFT_BUDGET, ctx.n_batch - len(decoding))  # drafts never crowd out a stream
        drafts, by_model = step_drafts(self._drafter, decoding)
        for slot, draft, model in zip(decoding, share(drafts, budget), by_model, strict=True):
            token = slot.next_token
            assert token is not None  # `decoding` holds the slots with a sampled token only
            index = ctx.batch_add_run([token, *draft], len(slot.tokens), slot.seq_id, logits_from=0)
            runs.append((slot, index, draft, model))
            added.append((slot, [token], False))
        chunk_cap = self.config.prefill_chunk if decoding else ctx.n_batch
        for slot in self._slots:
            if not slot.busy or not slot.pending or ctx.batch_room() == 0:
                continue
            chunk = slot.pending[: min(ctx.batch_room(), chunk_cap)]
            completes = len(chunk) == len(slot.pending)
            first = ctx.batch_add_run(  # logits only for the prompt's last token
                chunk, len(slot.tokens), slot.seq_id, logits_from=len(chunk) - 1 if completes else len(chunk)
            )
            if completes:
                runs.append((slot, first + len(chunk) - 1, [], False))
            added.append((slot, chunk, True))
        prefill = sum(len(tokens) for _, tokens, from_prompt in added if from_prompt)
        if not self._decode([slot for slot, _, _ in added], abortable=prefill >= ABORTABLE_BATCH):
            return
        for slot, tokens, from_prompt in added:
            slot.tokens.extend(tokens)
            if from_prompt:
                del slot.pending[: len(tokens)]
                self._counts.prefill_tokens += len(tokens)
            else:
                slot.next_token = None
        for slot, index, draft, model in runs:
            self._sample_run(slot, index, draft, model)
        flush_all([run[0].job for run in runs if run[0].job is not None])  # one hand-off per step

    def _decode(self, slots: list[Slot], *, abortable: bool) -> bool:
        """Run the queued batch (`abortable`: a long prefill, which a cancel may cut short); on
        failure undo it for `slots` and say so."""
        ctx = self._ctx
        self._batch_jobs = [slot.job for slot in slots if slot.job is not None]  # all busy
        ctx.set_abortable(abortable)
        error: MingyanError | None = None
        try:
            code = ctx.decode_batch()
        except Exception as exc:  # only the requests in this batch are affected
            log.exception("decode step failed")
            ctx.discard_batch()
            code, error = -1, self._record_error(exc)
        finally:
            self._batch_jobs = []
        if code != 0:
            self._undo(slots, code, error)
        return code == 0

    def _undo(self, slots: list[Slot], code: int, error: MingyanError | None) -> None:
        for slot in slots:
            self._ctx.seq_rm(slot.seq_id, len(slot.tokens), -1)
        if code == 2:  # aborted: everyone in the batch had been cancelled, or we are closing
            for slot in slots:
                if slot.busy:
                    self._finish(slot, FinishReason.CANCELLED)
            return
        self._fail(slots, error or self._record_error(EngineError(f"llama_decode failed with code {code}")))

    def _record_error(self, exc: Exception) -> MingyanError:
        """Count a failure and keep its one-line description for /health; the error for the requests."""
        error = exc if isinstance(exc, MingyanError) else EngineError(f"generation failed: {exc}")
        self._counts.errors += 1
        self._counts.last_error = str(error)
        return error

    def _sample_run(self, slot: Slot, index: int, draft: list[int], by_model: bool = False) -> None:
        """Sample `slot` at batch index `index` and on through its draft while the draft holds;
        drop the rejected draft tokens from the sequence; finish the stream if it ended."""
        reason: FinishReason | None = None

        def draw(j: int) -> int | None:
            nonlocal reason
            token, reason = self._sample(slot, index + j)
            return None if reason is not None else token

        accepted = verify(draft, draw)
        if draft:
            slot.tokens.extend(draft[:accepted])
            if accepted < len(draft) and not self._ctx.seq_rm(slot.seq_id, len(slot.tokens), -1):
                raise EngineError("could not roll back rejected draft tokens")
            assert slot.spec is not None  # only a speculating slot drafts
            control = slot.spec.model if by_model else slot.spec.control
            assert control is not None  # a model draft comes only with the model's control
            control.record(len(draft), accepted)
            self._counts.record_draft(len(draft), accepted, by_model)
        if reason is not None:  # after the rollback: the saved state matches slot.tokens
            self._finish(slot, reason)

    def _sample(self, slot: Slot, index: int) -> tuple[int, FinishReason | None]:
        assert slot.sampler is not None and slot.job is not None  # a busy slot has its job and sampler
        token = slot.sampler.sample(self._ctx, index)
        before = slot.generated
        top = slot.job.request.logprobs
        logprob = self._logprob(index, token, top) if top is not None else None  # only when asked
        reason = slot.accept(token, self._model, self._stop_ids, logprob)
        self._counts.generated_tokens += slot.generated - before
        return token, reason

    def _logprob(self, index: int, token: int, top: int) -> TokenLogprob:
        chosen, best = self._ctx.logprobs(index, self._model.n_vocab, token, top)

        def entry(t: int, value: float) -> TopLogprob:
            piece = self._model.piece(t)
            return TopLogprob(piece.decode("utf-8", errors="replace"), piece, value)

        mine = entry(token, chosen)
        return TokenLogprob(mine.token, mine.bytes, mine.logprob, tuple(entry(t, v) for t, v in best))

    def _finish(self, slot: Slot, reason: FinishReason) -> None:
        job = slot.job
        assert job is not None  # only a busy slot finishes
        cancelled = reason is FinishReason.CANCELLED
        self._counts.cancelled += int(cancelled)
        timing = slot.finish(reason, self._info.name)
        busy = time.monotonic() - job.submitted
        self._counts.busy_s_ewma = 0.8 * self._counts.busy_s_ewma + 0.2 * busy
        if not slot.keep_state:  # its owner or conversation was forgotten while it ran
            self._clear(slot)
        elif not cancelled:  # complete: worth keeping, even while closing (saved to disk then)
            self._cache.put(slot.scope, slot.tokens, self._ctx.state_get(slot.seq_id), label=slot.label)
        if self._observer is not None and not cancelled:
            self._observer(timing)

    def _fail(self, slots: list[Slot], exc: Exception) -> None:
        """End the requests of `slots` with `exc` and clear their sequences; the others go on."""
        for slot in slots:
            if slot.job is not None:  # busy
                slot.job.emit(exc)
                slot.release()
            self._clear(slot)

    def _clear(self, slot: Slot) -> None:
        self._ctx.seq_rm(slot.seq_id, -1, -1)
        slot.tokens = []
        if self._drafter is not None:
            self._drafter.forget(slot.seq_id)

    def _apply_forgets(self) -> None:
        """Clear the idle slots holding a forgotten scope (or conversation); running ones are
        cleared when they end instead of being saved."""
        with self._forget_lock:
            forgets, self._forgets = self._forgets, []
        for scope, label, done in forgets:
            for slot in self._slots:
                if slot.scope == scope and (label is None or slot.label == label):
                    if slot.busy:
                        slot.keep_state = False
                    else:
                        self._clear(slot)
            done.set()
