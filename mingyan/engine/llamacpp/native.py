"""Thin, typed wrappers over llama-cpp-python's low-level (ctypes) API.

Only the decode thread of `LlamaCppEngine` calls the context functions here; the
vocabulary functions (tokenize, token pieces) only read model data and are safe from
any thread. `llama_cpp` is imported lazily so that importing mingyan stays cheap.
"""

from __future__ import annotations

import ctypes
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mingyan.engine.base import Constraint, SamplingParams
from mingyan.engine.special_text import SpecialText, read_special_text
from mingyan.errors import InvalidRequestError, ModelError

SEED_SPACE = 0xFFFFFFFF  # llama.cpp treats 0xFFFFFFFF as "random"


def load_llama_cpp(verbose: bool = False) -> Any:
    import llama_cpp  # heavy: loads the shared library

    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if verbose else logging.ERROR)
    llama_cpp.llama_backend_init()
    return llama_cpp


@dataclass(frozen=True)
class ContextConfig:
    n_ctx: int
    n_batch: int
    n_threads: int
    n_seq_max: int = 1
    kv_unified: bool = False  # False: each sequence owns n_ctx / n_seq_max cells


def has_amx(lib: Any) -> bool:
    """Whether llama.cpp's CPU backend would use Intel AMX on this machine."""
    info = lib.llama_print_system_info().decode("utf-8", errors="replace")
    return "AMX_INT8 = 1" in info


class NativeModel:
    """A loaded model file: weights, vocabulary and metadata."""

    def __init__(self, path: Path, *, verbose: bool = False) -> None:
        self.lib = load_llama_cpp(verbose)
        params = self.lib.llama_model_default_params()
        # llama.cpp's AMX matrix multiply (weights repacked into an AMX buffer) crashes with a
        # segfault on Sapphire Rapids machines (llama.cpp #20824, reproduced here with the shipped
        # models): keep the weights in plain CPU buffers where AMX is present.
        if has_amx(self.lib):
            params.use_extra_bufts = False
        self.ptr = self.lib.llama_model_load_from_file(str(path).encode(), params)
        if not self.ptr:
            raise ModelError(f"llama.cpp could not load {path} (unsupported architecture or damaged file)")
        self.vocab = self.lib.llama_model_get_vocab(self.ptr)
        self.n_vocab = self.lib.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = self.lib.llama_model_n_ctx_train(self.ptr)
        self.add_bos = bool(self.lib.llama_vocab_get_add_bos(self.vocab))
        # Token pieces and end-of-generation flags never change: looked up once per token id.
        self._pieces: dict[tuple[int, bool], bytes] = {}
        self._eog: dict[int, bool] = {}

    @property
    def size_bytes(self) -> int:
        """Bytes of the weights (as stored: quantized)."""
        return int(self.lib.llama_model_size(self.ptr))

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of f16 keys and values one token occupies across all layers."""
        lib, ptr = self.lib, self.ptr
        head_dim = lib.llama_model_n_embd(ptr) // max(1, lib.llama_model_n_head(ptr))
        return 2 * lib.llama_model_n_layer(ptr) * lib.llama_model_n_head_kv(ptr) * head_dim * 2

    def meta(self, key: str) -> str | None:
        size = 256
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self.lib.llama_model_meta_val_str(self.ptr, key.encode(), buf, size)
            if n < 0:
                return None
            if n < size:
                return buf.value.decode("utf-8", errors="replace")
            size = n + 1

    def token_text(self, token: int) -> str:
        """The text of a (possibly special) token, e.g. '<|im_end|>'."""
        return self.piece(token, special=True).decode("utf-8", errors="replace")

    def piece(self, token: int, *, special: bool = False) -> bytes:
        cached = self._pieces.get((token, special))
        if cached is None:
            cached = self._pieces[(token, special)] = self._piece(token, special)
        return cached

    def _piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.lib.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def tokenize(self, text: str, *, add_bos: bool, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        while True:
            out = (self.lib.llama_token * capacity)()
            n = self.lib.llama_tokenize(self.vocab, data, len(data), out, capacity, add_bos, parse_special)
            if n >= 0:
                return list(out[:n])
            capacity = -n

    def special_text(self) -> SpecialText | None:
        """The control tokens' texts, for linear special-token parsing (see engine/special_text.py)."""
        return read_special_text(
            self.n_vocab, lambda t: int(self.lib.llama_vocab_get_attr(self.vocab, t)), self.token_text
        )

    def is_eog(self, token: int) -> bool:
        eog = self._eog.get(token)
        if eog is None:
            eog = self._eog[token] = bool(self.lib.llama_vocab_is_eog(self.vocab, token))
        return eog

    @property
    def can_roll_back(self) -> bool:
        """Whether a sequence's last positions can be removed from memory (not so for recurrent
        state), which speculative decoding needs."""
        lib, ptr = self.lib, self.ptr
        return not (lib.llama_model_is_recurrent(ptr) or lib.llama_model_is_hybrid(ptr))

    def special_token(self, which: str) -> int:
        return int(getattr(self.lib, f"llama_vocab_{which}")(self.vocab))

    def free(self) -> None:
        if self.ptr:
            self.lib.llama_model_free(self.ptr)
            self.ptr = None


def _numpy() -> Any:
    import numpy

    return numpy


class NativeContext:
    """A llama.cpp context plus one reusable batch. Not thread-safe: one owner thread."""

    def __init__(self, model: NativeModel, config: ContextConfig, abort_check) -> None:
        lib = self.lib = model.lib
        params = lib.llama_context_default_params()
        params.n_ctx = config.n_ctx
        params.n_batch = config.n_batch
        params.n_ubatch = config.n_batch
        params.n_seq_max = config.n_seq_max
        params.kv_unified = config.kv_unified
        params.n_threads = config.n_threads
        params.n_threads_batch = config.n_threads
        params.no_perf = True
        self.ptr = lib.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise ModelError(f"llama.cpp could not create a context of {config.n_ctx} tokens")
        self.n_ctx = lib.llama_n_ctx(self.ptr)
        self.n_ctx_seq = lib.llama_n_ctx_seq(self.ptr)
        self.n_batch = config.n_batch
        self.n_in_batch = 0
        self.memory = lib.llama_get_memory(self.ptr)
        self._batch = lib.llama_batch_init(config.n_batch, 0, config.n_seq_max)
        self._np = np = _numpy()
        # numpy views of the batch's arrays: a step writes each run of tokens with one slice
        # assignment instead of five ctypes item writes per token.
        n = config.n_batch
        self._tokens = np.ctypeslib.as_array(self._batch.token, shape=(n,))
        self._pos = np.ctypeslib.as_array(self._batch.pos, shape=(n,))
        self._want = np.ctypeslib.as_array(self._batch.logits, shape=(n,))
        np.ctypeslib.as_array(self._batch.n_seq_id, shape=(n,))[:] = 1  # always one sequence per token
        self._seq_at = [-1] * n  # the sequence id written at each batch index (written only on change)
        # Keep a reference: ctypes would otherwise free the callback under llama.cpp's feet.
        self._abort_cb = lib.ggml_abort_callback(lambda _data: bool(abort_check()))
        self._abortable = False

    def batch_add(self, token: int, pos: int, seq_id: int, logits: bool) -> int:
        """Queue one token for the next decode; returns its index in the batch."""
        return self.batch_add_run([token], pos, seq_id, logits_from=0 if logits else 1)

    def batch_add_run(self, tokens: list[int], pos: int, seq_id: int, *, logits_from: int) -> int:
        """Queue `tokens` of sequence `seq_id` at positions `pos`, `pos`+1, ...; logits are computed
        for the tokens from index `logits_from` of the run on. Returns the batch index of the first."""
        start, n = self.n_in_batch, len(tokens)
        end = start + n
        if n == 1:
            self._tokens[start] = tokens[0]
            self._pos[start] = pos
        else:
            self._tokens[start:end] = tokens
            self._pos[start:end] = self._np.arange(pos, pos + n, dtype=self._np.int32)
        self._want[start : start + logits_from] = 0
        self._want[start + logits_from : end] = 1
        seq_at, seq_ids = self._seq_at, self._batch.seq_id
        for i in range(start, end):
            if seq_at[i] != seq_id:
                seq_ids[i][0] = seq_at[i] = seq_id
        self.n_in_batch = end
        return start

    def batch_room(self) -> int:
        return self.n_batch - self.n_in_batch

    def set_abortable(self, abortable: bool) -> None:
        """Install the abort callback only for long batches: llama.cpp calls it once per graph
        node, and each call takes the GIL, which costs a few percent of decode speed."""
        if abortable != self._abortable:
            callback = self._abort_cb if abortable else self.lib.ggml_abort_callback(0)
            self.lib.llama_set_abort_callback(self.ptr, callback, None)
            self._abortable = abortable

    def discard_batch(self) -> None:
        """Forget the queued tokens (after a decode that failed before it took them)."""
        self.n_in_batch = 0

    def decode_batch(self) -> int:
        """Evaluate the queued tokens in one llama_decode; returns its code (0 ok, 2 aborted)."""
        self._batch.n_tokens = self.n_in_batch
        self.n_in_batch = 0
        return int(self.lib.llama_decode(self.ptr, self._batch))

    def logits(self, index: int, n_vocab: int):
        """The raw logits of batch position `index` (a numpy view, valid until the next decode)."""
        return self._np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.ptr, index), shape=(n_vocab,))

    def logprobs(self, index: int, n_vocab: int, token: int, top: int) -> tuple[float, list[tuple[int, float]]]:
        """Log-probability of `token` under the raw logits of batch position `index`, and the `top`
        most likely (token, log-probability), most likely first."""
        np = self._np
        logits = self.logits(index, n_vocab)
        shifted = logits.astype(np.float64) - float(logits.max())
        logp = shifted - np.log(np.exp(shifted).sum())
        best: list[tuple[int, float]] = []
        if top > 0:
            ids = np.argpartition(-logp, min(top, n_vocab - 1))[:top]
            best = sorted(((int(i), float(logp[i])) for i in ids), key=lambda pair: -pair[1])
        return float(logp[token]), best

    def state_get(self, seq_id: int) -> bytes:
        size = self.lib.llama_state_seq_get_size(self.ptr, seq_id)
        buf = (ctypes.c_uint8 * size)()
        n = self.lib.llama_state_seq_get_data(self.ptr, buf, size, seq_id)
        return ctypes.string_at(buf, n)

    def state_set(self, seq_id: int, data: bytes) -> bool:
        # Points llama.cpp at the bytes object's own buffer (read-only use): no copy.
        src = ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ctypes.c_uint8))
        return self.lib.llama_state_seq_set_data(self.ptr, src, len(data), seq_id) == len(data)

    def seq_rm(self, seq_id: int, p0: int, p1: int = -1) -> bool:
        return bool(self.lib.llama_memory_seq_rm(self.memory, seq_id, p0, p1))

    def clear(self) -> None:
        self.lib.llama_memory_clear(self.memory, True)

    def free(self) -> None:
        if self.ptr:
            self.lib.llama_batch_free(self._batch)
            self.lib.llama_free(self.ptr)
            self.ptr = None


def grammar_sampler(model: NativeModel, constraint: Constraint):
    """A llama.cpp grammar sampler for `constraint` (lazy when it has triggers).

    llama.cpp returns NULL for a grammar it cannot parse (it logs why); that is the caller's
    mistake, so it is an InvalidRequestError. A trigger is matched as a pattern over the text
    generated so far (`llama_sampler_init_grammar_lazy_patterns`: the grammar starts at the
    first capture group) and, when it is one token of this vocabulary, as that token too.
    """
    lib = model.lib
    text, root = constraint.grammar.encode(), constraint.root.encode()
    if not constraint.triggers:
        ptr = lib.llama_sampler_init_grammar(model.vocab, text, root)
    else:
        patterns = [rf"[\s\S]*?({re.escape(t)})[\s\S]*".encode() for t in constraint.triggers]
        tokens = [ids[0] for t in constraint.triggers if len(ids := model.tokenize(t, add_bos=False)) == 1]
        ptr = lib.llama_sampler_init_grammar_lazy_patterns(
            model.vocab,
            text,
            root,
            (ctypes.c_char_p * len(patterns))(*patterns),
            len(patterns),
            (lib.llama_token * max(1, len(tokens)))(*tokens),
            len(tokens),
        )
    if not ptr:
        raise InvalidRequestError(
            "the grammar for this request could not be parsed by llama.cpp",
            param="grammar",
            code="invalid_grammar",
        )
    return ptr


def check_grammar(model: NativeModel, constraint: Constraint) -> None:
    """Raise InvalidRequestError now if `constraint`'s grammar does not parse."""
    model.lib.llama_sampler_free(grammar_sampler(model, constraint))


class Sampler:
    """A llama.cpp sampler chain built from SamplingParams (one per generation)."""

    def __init__(
        self,
        model: NativeModel,
        params: SamplingParams,
        history: list[int],
        logit_bias: tuple[tuple[int, float], ...] = (),
    ) -> None:
        lib = self.lib = model.lib
        self.n_vocab = model.n_vocab
        self.seed = params.seed % SEED_SPACE if params.seed is not None else random.randrange(SEED_SPACE)
        self.ptr = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if params.constraint is not None:  # first: the samplers after it see only allowed tokens
            self._add(grammar_sampler(model, params.constraint))
        if logit_bias:  # first: the rest of the chain sees the biased logits (llama.cpp copies the array)
            biases = (lib.llama_logit_bias * len(logit_bias))(*(lib.llama_logit_bias(t, b) for t, b in logit_bias))
            self._add(lib.llama_sampler_init_logit_bias(model.n_vocab, len(logit_bias), biases))
        penalties = params.repeat_penalty != 1.0 or params.presence_penalty != 0.0 or params.frequency_penalty != 0.0
        if penalties:
            penalty = lib.llama_sampler_init_penalties(
                model.n_vocab,
                params.penalty_last_n,
                params.repeat_penalty,
                params.frequency_penalty,
                params.presence_penalty,
            )
            self._add(penalty)
        # Plain greedy (nothing else in the chain) is an argmax over the logits, done in numpy:
        # llama.cpp's chain would first copy the whole vocabulary into a candidate array.
        self.plain_greedy = params.temperature <= 0.0 and not (params.constraint is not None or logit_bias or penalties)
        if params.temperature <= 0.0:
            self._add(lib.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                self._add(lib.llama_sampler_init_top_k(params.top_k))
            self._add(lib.llama_sampler_init_top_p(params.top_p, 1))
            self._add(lib.llama_sampler_init_min_p(params.min_p, 1))
            self._add(lib.llama_sampler_init_temp(params.temperature))
            self._add(lib.llama_sampler_init_dist(self.seed))
        if penalties:  # the penalty window looks back into the prompt, as llama-server's does
            for token in history[-params.penalty_last_n :]:  # not the grammar: output only
                lib.llama_sampler_accept(penalty, token)

    def _add(self, sampler) -> None:
        self.lib.llama_sampler_chain_add(self.ptr, sampler)

    def sample(self, ctx: NativeContext, index: int = -1) -> int:
        """Sample from the logits of batch position `index` (also records the token)."""
        if self.plain_greedy:  # the first of equal maxima, as llama.cpp's greedy sampler picks
            return int(ctx.logits(index, self.n_vocab).argmax())
        return int(self.lib.llama_sampler_sample(self.ptr, ctx.ptr, index))

    def free(self) -> None:
        if self.ptr:
            self.lib.llama_sampler_free(self.ptr)
            self.ptr = None
