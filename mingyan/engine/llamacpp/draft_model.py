"""Draft-model speculative decoding: a small model with the target's vocabulary guesses the next
tokens of each stream, and the target checks the guesses in its normal batch.

The draft model has its own llama.cpp context with one sequence per slot of the target. Before
drafting for a stream, its sequence is brought in line with the stream's tokens: the longest
common prefix is kept, the rest (drafted tokens the target rejected, or a new request's prompt)
is removed with `llama_memory_seq_rm` and the missing tokens are evaluated, several streams per
`llama_decode`. Then `k` greedy steps draft `k` tokens per stream, again one decode per step for
all the drafting streams. Greedy drafts are a deterministic function of the text so far, so the
target's "draw, and keep while equal" check (speculation.verify) leaves its output exactly what
it would have been: byte-identical text for greedy requests, the same distribution for sampled
ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mingyan.engine.base import ModelInfo
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.native import ContextConfig, NativeContext, NativeModel
from mingyan.engine.llamacpp.prefix_cache import common_prefix
from mingyan.engine.llamacpp.slots import Slot
from mingyan.errors import EngineError, MingyanError, ModelError

log = logging.getLogger(__name__)
VOCAB_SIZE_SLACK = 128  # padded embedding rows: Qwen2.5 sizes differ by this much with one tokenizer
VOCAB_SAMPLE = 997  # token ids compared (spread over the vocabulary), besides the special ones
AUTO_FAMILY = "qwen2"  # the chat-format family an automatic draft model (shipped Qwen2.5 0.5B) serves
MIN_SIZE_RATIO = 3  # an automatic draft model is at most a third of the target's size (weights, bytes)
MAX_MODEL_DRAFT = 8  # each drafted token is one sequential decode of the draft model
CATCH_UP = 128  # tokens of a stream's history the draft model evaluates per step, at most (a new prompt)


@dataclass(frozen=True)
class DraftSource:
    """Which model drafts: `path` is resolved only when it is used (an automatic choice is
    checked against the target first); `required`: asked for by name, so a mismatch is an error
    (automatic: the engine runs without it)."""

    name: str
    path: Callable[[], Path]
    required: bool


def vocab_mismatch(target: NativeModel, draft: NativeModel) -> str | None:
    """Why `draft` cannot draft for `target` (their vocabularies differ), or None when they match:
    sizes within VOCAB_SIZE_SLACK and the same text for a spread sample of the token ids they share
    and for both models' bos and eos ids (an instruct model's eos may be another id than its base
    model's, with one tokenizer)."""
    if abs(target.n_vocab - draft.n_vocab) > VOCAB_SIZE_SLACK:
        return f"vocabulary sizes differ ({target.n_vocab} vs {draft.n_vocab} tokens)"
    shared = min(target.n_vocab, draft.n_vocab)
    step = max(1, shared // VOCAB_SAMPLE)
    specials = [m.special_token(w) for m in (target, draft) for w in ("bos", "eos")]  # may differ: same texts
    for token in [*range(0, shared, step), shared - 1, *(t for t in specials if 0 <= t < shared)]:
        if target.token_text(token) != draft.token_text(token):
            return f"token {token} is {target.token_text(token)!r} in one and {draft.token_text(token)!r} in the other"
    return None


class DraftModel:
    """The draft model's context: one sequence per target slot, greedy drafts for several streams
    at once. Decode thread only."""

    def __init__(self, model: NativeModel, *, name: str, n_slots: int, n_ctx_seq: int, n_threads: int) -> None:
        self.name = name
        self._model = model
        self._n_target_vocab = 0
        self._ctx = NativeContext(
            model,
            ContextConfig(n_ctx=n_ctx_seq * n_slots, n_batch=512, n_threads=n_threads, n_seq_max=n_slots),
            abort_check=lambda: False,
        )
        self._held: list[list[int]] = [[] for _ in range(n_slots)]  # what each sequence holds

    def limit_vocab(self, n_target_vocab: int) -> None:
        """Drafted ids at or above this are cut (the target has no such token)."""
        self._n_target_vocab = n_target_vocab

    def propose(self, wants: list[tuple[int, list[int], int]]) -> list[list[int]]:
        """Greedy drafts of up to `k` tokens for each (sequence id, tokens so far, k); the tokens
        so far end with the one the draft should follow. A stream whose history the draft model
        is still catching up with (a long new prompt: CATCH_UP tokens per step, so the other
        streams are not held up) gets no draft yet."""
        indexes = self._sync([(seq, history) for seq, history, _ in wants])
        drafts: list[list[int]] = [[] for _ in wants]
        live = [i for i, index in enumerate(indexes) if index is not None]
        for step in range(max((k for _, _, k in wants), default=0)):
            ctx = self._ctx
            going = []
            for i in live:
                seq, history, k = wants[i]
                token = int(ctx.logits(indexes[i] or 0, self._model.n_vocab).argmax())
                if token >= self._n_target_vocab:
                    continue
                drafts[i].append(token)
                if len(drafts[i]) < k and not self._model.is_eog(token):
                    indexes[i] = ctx.batch_add_run([token], len(history) + step, seq, logits_from=0)
                    self._held[seq].append(token)
                    going.append(i)
            live = going
            if not live:
                break
            self._decode()
        return drafts

    def forget(self, seq_id: int) -> None:
        """Empty a sequence (its slot was cleared or handed to another owner)."""
        self._ctx.seq_rm(seq_id, -1, -1)
        self._held[seq_id] = []

    def free(self) -> None:
        self._ctx.free()
        self._model.free()

    def _sync(self, streams: list[tuple[int, list[int]]]) -> list[int | None]:
        """Make each sequence hold its stream's tokens; the batch index of each stream's logits
        (None: still catching up).

        The tokens before each stream's last are evaluated first (up to CATCH_UP of them, in as
        many decodes as they need), then the last tokens of the streams caught up in one decode,
        so all their logits are there at once."""
        ctx = self._ctx
        pending: list[list[int]] = []
        for seq, history in streams:
            keep = min(common_prefix(self._held[seq], history), len(history) - 1)
            if not ctx.seq_rm(seq, keep, -1):
                ctx.seq_rm(seq, -1, -1)
                keep = 0
            del self._held[seq][keep:]
            pending.append(history[keep : len(history) - 1][:CATCH_UP])
        while any(pending):
            for i, (seq, _) in enumerate(streams):
                chunk = pending[i][: ctx.batch_room()]
                if chunk:
                    ctx.batch_add_run(chunk, len(self._held[seq]), seq, logits_from=len(chunk))
                    self._held[seq].extend(chunk)
                    del pending[i][: len(chunk)]
            self._decode()
        indexes: list[int | None] = []
        for seq, history in streams:
            caught_up = len(self._held[seq]) == len(history) - 1
            indexes.append(ctx.batch_add_run(history[-1:], len(history) - 1, seq, logits_from=0) if caught_up else None)
            if caught_up:
                self._held[seq].append(history[-1])
        if any(index is not None for index in indexes):
            self._decode()
        return indexes

    def _decode(self) -> None:
        code = self._ctx.decode_batch()
        if code != 0:
            for seq in range(len(self._held)):
                self.forget(seq)
            raise EngineError(f"the draft model {self.name}: llama_decode failed with code {code}")


def open_draft(
    source: DraftSource, target: NativeModel, target_name: str, info: ModelInfo, cfg: EngineConfig
) -> DraftModel | None:
    """The draft model for `target`, or None when an automatic choice does not fit it (not a
    Qwen2 family model, the draft itself, another vocabulary, or a target not at least
    MIN_SIZE_RATIO times the draft's size: drafting only pays with a much smaller draft). A model asked for by name that
    does not fit is a ModelError naming both."""
    if not source.required and (info.family != AUTO_FAMILY or source.name == target_name):
        return None
    try:
        path = source.path()
        if not source.required and path.stat().st_size * MIN_SIZE_RATIO > target.size_bytes:
            log.info(
                "not drafting with %s for %s: the target is not %dx its size", source.name, target_name, MIN_SIZE_RATIO
            )
            return None
        model = NativeModel(path)
    except MingyanError as exc:
        if source.required:
            raise ModelError(f"draft model {source.name} for {target_name}: {exc}") from exc
        log.warning("not drafting with %s for %s: %s", source.name, target_name, exc)
        return None
    reason = vocab_mismatch(target, model)
    if reason is not None:
        model.free()
        if source.required:
            raise ModelError(f"draft model {source.name} cannot draft for {target_name}: {reason}")
        log.info("not drafting with %s for %s: %s", source.name, target_name, reason)
        return None
    drafter = DraftModel(model, name=source.name, n_slots=cfg.n_slots, n_ctx_seq=info.n_ctx, n_threads=cfg.n_threads)
    drafter.limit_vocab(target.n_vocab)
    log.info("drafting with %s for %s", source.name, target_name)
    return drafter


def step_drafts(drafter: DraftModel | None, decoding: list[Slot]) -> tuple[list[list[int]], list[bool]]:
    """Each stream's draft for this step, from one source: the draft model when it drafts for the
    stream now (its acceptance was not low lately), else prompt lookup; and whether each came
    from the draft model."""
    sizes = [slot.model_draft_size() if drafter is not None else 0 for slot in decoding]
    wants = [(s.seq_id, [*s.tokens, s.next_token or 0], k) for s, k in zip(decoding, sizes, strict=True) if k > 0]
    proposed: list[list[int]] = []
    if drafter is not None and wants:
        try:
            proposed = drafter.propose(wants)
        except EngineError:  # the draft model failed: this step goes without its drafts
            log.exception("draft model step failed")
            proposed = [[] for _ in wants]
    made = iter(proposed)
    drafts = [next(made) if k > 0 else slot.draft() for slot, k in zip(decoding, sizes, strict=True)]
    return drafts, [k > 0 for k in sizes]
