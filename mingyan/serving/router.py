"""ModelRouter: several models in one process, one engine per model, behind the one Engine protocol.

Each model has a `ModelHandle`, an Engine of its own that loads the model on first use. The router
itself is an Engine too: the first (primary) model's, so code that knows one engine keeps working.

- **Loading** happens on first use (`load`, blocking: call it from a worker thread), at most once
  at a time per model; a second caller waits for the first. While it runs, `status()` says
  `loading` and for how long (shown by /health and /v1/models), and the log says when it starts
  and ends.
- **Budget**: a model counts `size_bytes` (its file, mapped into memory) while loaded or loading.
  Loading one that does not fit unloads the least recently used idle models first; if the models
  in use leave no room, loading fails with EngineBusyError (retry later) and nothing is unloaded.
- **Keep-alive**: a model idle (no request in flight) for `keep_alive_s` is unloaded by `sweep()`,
  which a background thread runs (`start()`); the next request loads it again. The primary model
  is pinned: loaded at start and never unloaded, so the default single-model path is unchanged.
- The clock is injectable (`clock`), so tests move time instead of waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

from mingyan.engine.base import Engine, EngineStats, EventStream, GenerationRequest, ModelInfo
from mingyan.errors import EngineBusyError, InvalidRequestError, MingyanError, ModelError
from mingyan.formats.template import ChatTemplate
from mingyan.serving.tracked import TrackedStream

log = logging.getLogger("mingyan.serving")

SWEEP_INTERVAL_MAX_S = 30.0


@dataclass(frozen=True)
class ModelSource:
    """How to bring up one model's engine."""

    name: str
    open: Callable[[], Engine]  # loads the model (blocking)
    size_bytes: int = 0  # memory it holds once loaded (what the budget counts)
    where: str = "local"  # "local", or the URL of the server that runs it


@dataclass(frozen=True)
class ModelStatus:
    name: str
    state: str  # "unloaded", "loading", "loaded" or "error" (the last load failed)
    where: str
    size_bytes: int
    pinned: bool
    in_flight: int  # requests streaming now
    loads: int  # times loaded since start
    loading_s: float | None  # seconds the current load has taken so far, or the last load took
    idle_s: float | None  # seconds since the last request ended (None: never used, or in use)
    error: str | None = None


@dataclass
class _Slot:
    source: ModelSource
    pinned: bool = False
    engine: Engine | None = None
    info: ModelInfo | None = None
    loading: bool = False
    load_started: float = 0.0
    load_seconds: float | None = None
    in_flight: int = 0
    last_used: float | None = None
    loads: int = 0
    error: str | None = None
    waiters: list[threading.Event] = field(default_factory=list)


class ModelRouter:
    """Engines of several models, loaded on demand within a memory budget (see the module doc)."""

    def __init__(
        self,
        sources: Sequence[ModelSource],
        *,
        budget_bytes: int = 0,
        keep_alive_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        forget_offline: Callable[[str], None] | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        """`budget_bytes` 0: no limit. `forget_offline(scope)`: drops a scope's saved states of
        models that are not loaded (their files on disk). `report`: where loading and unloading
        are told (default: this module's log, at INFO)."""
        if not sources:
            raise ValueError("a router needs at least one model")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ModelError(f"a model is named twice: {', '.join(names)}")
        self._slots = {s.name: _Slot(s, pinned=i == 0) for i, s in enumerate(sources)}
        self._primary = names[0]
        self.budget_bytes = budget_bytes
        self.keep_alive_s = keep_alive_s
        self._clock = clock
        self._forget_offline = forget_offline
        self._report = report or log.info
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._handles = {name: ModelHandle(self, name) for name in names}

    # ---- models --------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    @property
    def primary(self) -> str:
        return self._primary

    def has(self, name: str) -> bool:
        return name in self._slots

    def handle(self, name: str) -> ModelHandle:
        """The Engine of model `name` (InvalidRequestError when it is not served here)."""
        handle = self._handles.get(name)
        if handle is None:
            raise InvalidRequestError(
                f"The model '{name}' is not served here; this server runs {', '.join(map(repr, self._slots))}.",
                param="model",
                code="model_not_found",
            )
        return handle

    def load(self, name: str) -> Engine:
        """The engine of `name`, loading it first if needed (blocking: call from a worker thread)."""
        self.handle(name)  # refuses a model not served
        slot = self._slots[name]
        while True:
            with self._lock:
                if slot.engine is not None:
                    slot.last_used = self._clock() if slot.in_flight == 0 else slot.last_used
                    return slot.engine
                if not slot.loading:
                    victims = self._claim(slot)
                    break
                waiter = threading.Event()
                slot.waiters.append(waiter)
            waiter.wait()
            if slot.engine is None and slot.error is not None and not slot.loading:
                raise ModelError(f"model {name} could not be loaded: {slot.error}")
        return self._open(slot, victims)

    def _claim(self, slot: _Slot) -> list[tuple[str, Engine]]:
        """Under the lock: mark `slot` loading, after taking idle models out (LRU first) until it fits."""
        victims: list[tuple[str, Engine]] = []
        if self.budget_bytes > 0:
            others = [s for s in self._slots.values() if s is not slot and (s.engine is not None or s.loading)]
            used = sum(s.source.size_bytes for s in others)
            idle = sorted(
                (s for s in others if s.engine is not None and not s.pinned and s.in_flight == 0),
                key=lambda s: s.last_used or 0.0,
            )
            chosen = []
            for other in idle:
                if used + slot.source.size_bytes <= self.budget_bytes:
                    break
                chosen.append(other)
                used -= other.source.size_bytes
            if used + slot.source.size_bytes > self.budget_bytes:
                busy = ", ".join(s.source.name for s in others if s not in chosen)
                raise EngineBusyError(
                    f"model {slot.source.name} does not fit the memory budget of {self.budget_bytes >> 20} MiB "
                    f"beside the models in use ({busy}); retry when they are idle",
                    retry_after_s=5.0,
                )
            for other in chosen:
                assert other.engine is not None
                victims.append((other.source.name, other.engine))
                other.engine = None
        slot.loading, slot.load_started, slot.error = True, self._clock(), None
        return victims

    def _open(self, slot: _Slot, victims: list[tuple[str, Engine]]) -> Engine:
        for name, engine in victims:
            self._report(f"unloading model {name} to make room for {slot.source.name}")
            engine.close()
        return self._open_one(slot)

    def _open_one(self, slot: _Slot) -> Engine:
        name = slot.source.name
        self._report(f"loading model {name} ({slot.source.where})")
        try:
            engine = slot.source.open()
            info = engine.info
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            self._report(f"loading model {name} failed: {reason}")
            self._loaded(slot, None, None, reason)
            if isinstance(exc, MingyanError):
                raise
            raise ModelError(f"model {name} could not be loaded: {reason}") from exc
        self._loaded(slot, engine, info, None)
        self._report(f"model {name} loaded in {slot.load_seconds or 0.0:.1f} s")
        return engine

    def _loaded(self, slot: _Slot, engine: Engine | None, info: ModelInfo | None, error: str | None) -> None:
        with self._lock:
            slot.engine, slot.loading, slot.error = engine, False, error
            slot.load_seconds = self._clock() - slot.load_started
            if engine is not None:
                slot.info, slot.loads, slot.last_used = info, slot.loads + 1, self._clock()
            waiters, slot.waiters = slot.waiters, []
        for waiter in waiters:
            waiter.set()

    def info_of(self, name: str) -> ModelInfo | None:
        """The model's info once it has been loaded (kept while unloaded); None before."""
        return self._slots[name].info

    # ---- requests in flight ---------------------------------------------------------------------

    def _generate(self, name: str, request: GenerationRequest) -> EventStream:
        slot = self._slots[name]
        engine = self.load(name)  # loaded already when the route awaited it; a load otherwise
        with self._lock:
            slot.in_flight += 1
        try:
            stream = engine.generate(request)
        except BaseException:
            self._ended(slot)
            raise
        return TrackedStream(stream, lambda: self._ended(slot))

    def _ended(self, slot: _Slot) -> None:
        with self._lock:
            slot.in_flight -= 1
            slot.last_used = self._clock()

    # ---- keep-alive -----------------------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Unload the models idle for longer than the keep-alive; returns their names."""
        now = self._clock()
        victims: list[tuple[str, Engine]] = []
        with self._lock:
            for slot in self._slots.values():
                idle = slot.engine is not None and not slot.pinned and slot.in_flight == 0
                if idle and now - (slot.last_used or now) >= self.keep_alive_s:
                    assert slot.engine is not None
                    victims.append((slot.source.name, slot.engine))
                    slot.engine = None
        for name, engine in victims:
            self._report(f"unloading model {name}: idle for {self.keep_alive_s:g} s")
            engine.close()
        return [name for name, _ in victims]

    def start(self) -> None:
        """Load the primary model now, and sweep idle models in the background."""
        self.load(self._primary)
        if len(self._slots) > 1 and self._sweeper is None:
            interval = max(0.2, min(SWEEP_INTERVAL_MAX_S, self.keep_alive_s / 4))
            self._sweeper = threading.Thread(target=self._sweep_loop, args=(interval,), name="model-sweep", daemon=True)
            self._sweeper.start()

    def _sweep_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.sweep()
            except Exception:  # pragma: no cover - an engine failing to close must not end the sweeper
                log.exception("unloading idle models failed")

    def status(self) -> list[ModelStatus]:
        now = self._clock()
        with self._lock:
            return [_status(slot, now) for slot in self._slots.values()]

    # ---- the Engine protocol: the primary model ------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self._handles[self._primary].info

    @property
    def chat_template(self) -> ChatTemplate | None:
        return self._handles[self._primary].chat_template

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        return self._handles[self._primary].tokenize(text, special=special, bos=bos)

    def has_special_text(self, text: str) -> bool:
        return self._handles[self._primary].has_special_text(text)

    def generate(self, request: GenerationRequest) -> EventStream:
        return self._generate(self._primary, request)

    def stats(self) -> EngineStats:
        """The sum over the loaded models."""
        return _sum_stats([engine.stats() for _, engine in self.loaded()])

    def model_stats(self) -> list[tuple[str, EngineStats]]:
        return [(name, engine.stats()) for name, engine in self.loaded()]

    def loaded(self) -> list[tuple[str, Engine]]:
        with self._lock:
            return [(s.source.name, s.engine) for s in self._slots.values() if s.engine is not None]

    def forget(self, scope: str, label: str | None = None) -> None:
        for _, engine in self.loaded():
            engine.forget(scope, label)
        if label is None and self._forget_offline is not None:
            self._forget_offline(scope)

    def close(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        with self._lock:
            engines = [s.engine for s in self._slots.values() if s.engine is not None]
            for slot in self._slots.values():
                slot.engine = None
        for engine in engines:
            engine.close()


class ModelHandle:
    """One model's Engine: loads the model when first needed; counts its requests in flight."""

    def __init__(self, router: ModelRouter, name: str) -> None:
        self._router, self.name = router, name

    def _engine(self) -> Engine:
        return self._router.load(self.name)

    @property
    def info(self) -> ModelInfo:
        return self._router.info_of(self.name) or self._engine().info

    @property
    def chat_template(self) -> ChatTemplate | None:
        return self._engine().chat_template

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        return self._engine().tokenize(text, special=special, bos=bos)

    def has_special_text(self, text: str) -> bool:
        return self._engine().has_special_text(text)

    def generate(self, request: GenerationRequest) -> EventStream:
        return self._router._generate(self.name, request)

    def stats(self) -> EngineStats:
        engines = dict(self._router.loaded())
        return engines[self.name].stats() if self.name in engines else _sum_stats([])

    def forget(self, scope: str, label: str | None = None) -> None:
        self._router.forget(scope, label)

    def close(self) -> None:
        """The router closes the engines."""


def _status(slot: _Slot, now: float) -> ModelStatus:
    loading_s: float | None
    if slot.loading:
        state, loading_s = "loading", now - slot.load_started
    else:
        state = "loaded" if slot.engine is not None else "error" if slot.error else "unloaded"
        loading_s = slot.load_seconds
    idle = None if slot.in_flight or slot.last_used is None else max(0.0, now - slot.last_used)
    return ModelStatus(
        name=slot.source.name,
        state=state,
        where=slot.source.where,
        size_bytes=slot.source.size_bytes,
        pinned=slot.pinned,
        in_flight=slot.in_flight,
        loads=slot.loads,
        loading_s=loading_s,
        idle_s=idle,
        error=slot.error,
    )


def _sum_stats(all_stats: list[EngineStats]) -> EngineStats:
    totals = {f.name: sum(getattr(s, f.name) for s in all_stats) for f in fields(EngineStats) if f.name != "last_error"}
    errors = [s.last_error for s in all_stats if s.last_error]
    return EngineStats(**totals, last_error=errors[0] if errors else None)
