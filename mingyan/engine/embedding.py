"""Embeddings with llama.cpp: one context in embedding mode, owned by one thread.

The context is created with `embeddings=True` and the pooling type left unspecified, so llama.cpp
takes it from the GGUF (`<arch>.pooling_type`: mean, cls or last); a model without one (a chat
model) is refused. Many inputs go into one `llama_decode`, each as its own sequence, in groups of
about `group_tokens` tokens (at most `n_batch` tokens and `n_seq_max` sequences); `n_ubatch`
equals `n_batch`, because a non-causal (BERT-like) model must see a whole input in one
micro-batch. Each sequence's pooled vector is
read with `llama_get_embeddings_seq` and scaled to unit length, as OpenAI's are. An input longer
than the model takes is refused, never truncated.

A llama.cpp context is not thread-safe: every native call on it runs on the embedder's single
worker thread, and `embed()` awaits that thread, so the event loop never blocks. Requests take
turns on it (`engine/turns.py`): one decode of one request per turn.
"""

from __future__ import annotations

import asyncio
import ctypes
import queue
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mingyan.engine.base import EmbedderInfo, EmbeddingInput, Embeddings
from mingyan.engine.llamacpp.native import NativeModel
from mingyan.engine.turns import TurnQueue
from mingyan.errors import EngineBusyError, EngineClosing, EngineError, InvalidRequestError, ModelError

POOLING_NAMES = {1: "mean", 2: "cls", 3: "last"}  # llama_pooling_type values that give one vector
# Families trained with Matryoshka representation learning: a prefix of their vectors, renormalized,
# is still an embedding, so `dimensions` may shorten them. Matched against the GGUF's general.name.
MATRYOSHKA_NAMES = (
    "nomic-embed-text-v1.5",
    "qwen3-embedding",
    "embeddinggemma",
    "mxbai-embed-large",
    "snowflake-arctic-embed-m-v1.5",
    "snowflake-arctic-embed-l-v2.0",
    "jina-embeddings-v3",
)


@dataclass(eq=False)
class _Job:
    """One request on its way through the worker: tokenized on its first turn, then one group of
    inputs (one llama_decode) per turn."""

    inputs: list[EmbeddingInput]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    cancelled: threading.Event = field(default_factory=threading.Event)
    tokens: list[list[int]] | None = None
    groups: deque[list[int]] = field(default_factory=deque)
    vectors: list[list[float]] = field(default_factory=list)

    def settle(self, result: Embeddings | None = None, error: BaseException | None = None) -> None:
        """Hand the outcome to the waiting coroutine (from the worker thread)."""

        def apply() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the caller's loop is gone: nobody waits any more
            pass


class LlamaCppEmbedder:
    """The `Embedder` protocol over a GGUF embedding model.

    Requests take turns on the worker thread, one llama_decode each, so a short request waits for
    at most one batch of a long one; one user may hold at most a quarter of the queue.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        sha256: str,
        n_threads: int,
        n_batch: int = 2048,
        n_seq_max: int = 64,
        group_tokens: int = 512,
        max_queue: int = 64,
        max_request_tokens: int = 300_000,
        verbose: bool = False,
    ) -> None:
        self.max_queue = max_queue
        self.group_tokens = group_tokens
        self.max_request_tokens = max_request_tokens
        self._waiting: dict[str, int] = {}  # requests waiting or running, by user
        self._turns: TurnQueue[_Job] = TurnQueue()
        self._model = NativeModel(path, verbose=verbose)
        started: queue.Queue[_NativeEmbedder | BaseException] = queue.Queue(1)
        self._thread = threading.Thread(
            target=self._work, args=(started, n_threads, n_batch, n_seq_max), name=f"embed-{name}", daemon=True
        )
        self._thread.start()
        native = started.get()
        if isinstance(native, BaseException):
            self._thread.join()
            self._model.free()
            if isinstance(native, ModelError):
                raise ModelError(f"cannot serve {name!r} as the embedding model: {native}") from native
            raise native
        self.max_input_tokens = native.max_input_tokens
        self._info = EmbedderInfo(
            name=name,
            path=str(path),
            sha256=sha256,
            dimensions=native.n_embd,
            max_input_tokens=native.max_input_tokens,
            n_vocab=self._model.n_vocab,
            pooling=POOLING_NAMES[native.pooling],
            matryoshka=_is_matryoshka(self._model.meta("general.name") or name),
        )

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    async def embed(self, inputs: Sequence[EmbeddingInput], user: str = "") -> Embeddings:
        if sum(self._waiting.values()) >= self.max_queue:
            raise EngineBusyError("Too many embedding requests are waiting; retry shortly.")
        if self._waiting.get(user, 0) >= max(1, self.max_queue // 4):
            raise EngineBusyError("You have too many embedding requests waiting; retry shortly.")
        loop = asyncio.get_running_loop()
        job = _Job(list(inputs), loop, loop.create_future())
        if not self._turns.put(job):
            raise EngineClosing("the embedding model is shutting down")
        self._waiting[user] = self._waiting.get(user, 0) + 1
        try:
            return await job.future
        except asyncio.CancelledError:
            job.cancelled.set()  # dropped at its next turn
            raise
        finally:
            self._waiting[user] -= 1
            if not self._waiting[user]:
                del self._waiting[user]

    def close(self) -> None:
        for job in self._turns.close():
            job.settle(error=EngineClosing("the embedding model is shutting down"))
        if self._thread.is_alive():
            self._thread.join()
        self._model.free()

    def _work(self, started: queue.Queue, n_threads: int, n_batch: int, n_seq_max: int) -> None:
        """The worker thread: owns the context from creation to free."""
        try:
            native = _NativeEmbedder(self._model, n_threads, n_batch, n_seq_max)
        except BaseException as exc:
            started.put(exc)
            return
        started.put(native)
        try:
            while (job := self._turns.take()) is not None:
                if job.cancelled.is_set():
                    continue
                try:
                    finished = self._turn(native, job)
                except Exception as exc:  # a refused input (400) or a native failure
                    job.settle(error=exc)
                    continue
                if finished:
                    job.settle(Embeddings(job.vectors, sum(len(t) for t in job.tokens or ())))
                elif not self._turns.again(job):
                    job.settle(error=EngineClosing("the embedding model is shutting down"))
        finally:
            native.free()

    def _turn(self, native: _NativeEmbedder, job: _Job) -> bool:
        """Advance `job` by one step; True when its vectors are complete."""
        if job.tokens is None:
            job.tokens = [self._tokens(item, index) for index, item in enumerate(job.inputs)]
            total = sum(len(t) for t in job.tokens)
            if total > self.max_request_tokens:
                raise InvalidRequestError(
                    f"The inputs hold {total} tokens together; at most {self.max_request_tokens} "
                    "are allowed per request. Send them in several requests.",
                    param="input",
                )
            lengths = [len(t) for t in job.tokens]
            job.groups = deque(plan_groups(lengths, min(self.group_tokens, native.n_batch), native.n_seq_max))
            job.vectors = [[] for _ in job.tokens]
            return False
        group = job.groups.popleft()
        for index, vector in zip(group, native.run([job.tokens[i] for i in group]), strict=True):
            job.vectors[index] = _unit(vector)
        return not job.groups

    def _tokens(self, item: EmbeddingInput, index: int) -> list[int]:
        where = f"input[{index}]"
        if isinstance(item, str):
            if not item:
                raise InvalidRequestError(f"{where} is an empty string.", param="input")
            tokens = self._model.tokenize(item, add_bos=True, parse_special=False)
        else:
            tokens = list(item)
            if not tokens:
                raise InvalidRequestError(f"{where} is an empty list of tokens.", param="input")
            bad = next((t for t in tokens if not 0 <= t < self._model.n_vocab), None)
            if bad is not None:
                raise InvalidRequestError(
                    f"{where} holds token id {bad}, outside this model's vocabulary (0 to {self._model.n_vocab - 1}).",
                    param="input",
                )
        limit = self.max_input_tokens
        if len(tokens) > limit:
            raise InvalidRequestError(
                f"{where} has {len(tokens)} tokens; {self._info.name} takes at most {limit} tokens "
                "per input. Split or shorten it.",
                param="input",
                code="context_length_exceeded",
            )
        return tokens


class _NativeEmbedder:
    """The context and its batch. Created, used and freed on the worker thread only."""

    def __init__(self, model: NativeModel, n_threads: int, n_batch: int, n_seq_max: int) -> None:
        lib = self.lib = model.lib
        params = lib.llama_context_default_params()
        # n_ctx bounds one input (and a causal model's cache, shared by the batch's sequences);
        # llama.cpp lets a non-causal model's batch exceed it, and clamps a causal model's to it.
        params.n_ctx = min(model.n_ctx_train or n_batch, n_batch)
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        params.kv_unified = True  # a causal model's sequences share the cache: any input may be long
        params.embeddings = True
        params.pooling_type = lib.LLAMA_POOLING_TYPE_UNSPECIFIED  # from the GGUF
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        self.ptr = lib.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise ModelError(f"llama.cpp could not create an embedding context of {n_batch} tokens")
        self.pooling = int(lib.llama_pooling_type(self.ptr))
        if self.pooling not in POOLING_NAMES:
            lib.llama_free(self.ptr)
            raise ModelError(
                "it is not an embedding model: its GGUF sets no pooling type (<arch>.pooling_type mean, cls or last)"
            )
        self.n_embd = int(lib.llama_model_n_embd_out(model.ptr))
        self.n_batch, self.n_seq_max = int(lib.llama_n_batch(self.ptr)), n_seq_max
        self.max_input_tokens = min(int(lib.llama_n_ctx(self.ptr)), self.n_batch)
        self.memory = lib.llama_get_memory(self.ptr)  # NULL for encoder-only models
        self.batch = lib.llama_batch_init(self.n_batch, 0, 1)

    def run(self, inputs: list[list[int]]) -> list[np.ndarray]:
        """One llama_decode over `inputs` (sequence i = inputs[i]); their pooled vectors."""
        lib, batch = self.lib, self.batch
        if self.memory:
            lib.llama_memory_clear(self.memory, True)
        n = 0
        for seq, tokens in enumerate(inputs):
            for pos, token in enumerate(tokens):
                batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, pos, 1
                batch.seq_id[n][0], batch.logits[n] = seq, 1
                n += 1
        batch.n_tokens = n
        code = int(lib.llama_decode(self.ptr, batch))
        if code != 0:
            raise EngineError(f"llama_decode failed with code {code} while computing embeddings")
        return [self._pooled(seq) for seq in range(len(inputs))]

    def _pooled(self, seq: int) -> np.ndarray:
        ptr: Any = self.lib.llama_get_embeddings_seq(self.ptr, seq)
        if not ptr:
            raise EngineError(f"llama.cpp returned no embedding for sequence {seq}")
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), (self.n_embd,)).copy()

    def free(self) -> None:
        if self.ptr:
            self.lib.llama_batch_free(self.batch)
            self.lib.llama_free(self.ptr)
            self.ptr = None


def plan_groups(lengths: list[int], max_tokens: int, max_inputs: int) -> list[list[int]]:
    """Input indices, in order, in decode groups of at most `max_tokens` tokens (an input longer
    than that goes alone) and `max_inputs` inputs.

    Small groups are faster per input than large ones: a decode attends over all of its tokens and
    masks the other sequences out, so its attention cost grows with the square of its size
    (measured: 64 short inputs embed ~1.5x faster in groups of 256 tokens than in one of 2048).
    """
    groups: list[list[int]] = []
    tokens = 0
    for index, length in enumerate(lengths):
        if not groups or len(groups[-1]) == max_inputs or tokens + length > max_tokens:
            groups.append([])
            tokens = 0
        groups[-1].append(index)
        tokens += length
    return groups


def _unit(vector: np.ndarray) -> list[float]:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32).tolist()


def _is_matryoshka(name: str) -> bool:
    lowered = name.lower().replace(" ", "-")
    return any(family in lowered for family in MATRYOSHKA_NAMES)
