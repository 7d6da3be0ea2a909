"""One model's engine as N Ray actors (replicas), behind the one Engine protocol.

`open_ray_engine` joins a Ray cluster (or starts one in this process), starts the replicas
(`ray_replica.EngineReplica`, each mingyan's own llama.cpp engine) where Ray places them, and
returns a `RayEngine` for the API process: everything above the engine (chat, quotas, history,
moderation, the web chat) works unchanged.

- **Routing** (`ray_routing.py`): a request goes to the replica that last served its conversation
  (or its longest recent prompt prefix, same owner only), unless that replica is dead, full, or
  busier than the least busy one by a whole set of slots; then to the replica with the fewest
  requests in flight.
- **Fairness**: each replica's engine queues round-robin by user, as one process does. Across
  replicas the router only balances load: a user's requests may run on several replicas at once,
  within their concurrent-streams quota.
- **Health**: a background thread reads each replica's counters every second; a replica whose
  actor died (its process killed, its node gone) is taken out of rotation, and the streams it was
  running end with `EngineLost` (the chat layer saves those replies `interrupted`). New requests
  go to the others; with none left, a request is a 503.
- **Replacement** (`ray_restart.py`): a dead replica is started again as a new actor with the same
  resources, after a back-off, in a thread of its own; it is back in rotation once its model has
  loaded. One that keeps dying at start is given up (state `dead`). Each replica's state
  (`alive`, `starting`, `dead`) and restarts show on /health.
- Ray is imported only when a Ray engine is opened: it stays an optional dependency (mingyan[ray]).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mingyan.engine.base import (
    EngineStats,
    EventStream,
    GenerationRequest,
    ModelInfo,
    check_fits,
    check_logit_bias,
)
from mingyan.errors import EngineBusyError, EngineClosing, EngineError, EngineLost, ModelError, UpstreamUnavailable
from mingyan.formats.template import ChatTemplate
from mingyan.serving.ray_connect import connect
from mingyan.serving.ray_replica import EngineReplica, ReplicaInfo, ReplicaSpec
from mingyan.serving.ray_restart import RestartPolicy
from mingyan.serving.ray_routing import Affinity, ReplicaLoad, choose
from mingyan.serving.ray_stream import Observer, RayStream

log = logging.getLogger("mingyan.serving.ray")

WATCH_INTERVAL_S = 1.0
CALL_TIMEOUT_S = 30.0
START_TIMEOUT_S = 900.0  # a replica may assemble and hash its model file first


@dataclass(frozen=True)
class ReplicaStatus:
    """One replica, as /health shows it."""

    index: int
    alive: bool
    in_flight: int  # requests sent to it and not yet ended
    served: int  # requests sent to it since start
    n_slots: int
    pid: int
    node_id: str
    node_ip: str
    error: str | None = None  # why it is out of rotation
    state: str = "alive"  # "alive", "starting" (a replacement is on its way) or "dead" (given up)
    restarts: int = 0  # times replaced since start


@dataclass
class _Replica:
    index: int
    handle: Any  # the Ray actor handle
    info: ReplicaInfo
    alive: bool = True
    in_flight: int = 0
    served: int = 0
    stats: EngineStats | None = None
    error: str | None = None
    state: str = "alive"
    restarts: int = 0
    failures: int = 0  # replacements in a row that failed to start or died soon after
    generation: int = 0  # which actor of the replica: a death of an earlier one is old news
    started: float = field(default_factory=time.monotonic)


Starter = Callable[[int], tuple[Any, ReplicaInfo]]  # starts replica i's actor; returns it once loaded


def open_ray_engine(
    spec: ReplicaSpec,
    *,
    address: str,
    replicas: int,
    resources: Sequence[dict[str, float]] = (),
    observer: Observer | None = None,
    policy: RestartPolicy | None = None,
) -> RayEngine:
    """Start `replicas` actors of `spec`'s model on the cluster and wait until each is loaded.
    Replica i asks for `resources[i % len(resources)]`; without resources Ray spreads them. A
    replica that dies later is started again with the same options (`policy`)."""
    import ray
    from ray.exceptions import GetTimeoutError, RayError

    connect(address)
    actor: Any = ray.remote(EngineReplica)  # its handles' methods are called by name: typed as Any

    def launch(i: int) -> Any:
        options: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0}
        if resources:
            options["resources"] = dict(resources[i % len(resources)])
        else:
            options["scheduling_strategy"] = "SPREAD"
        return actor.options(**options).remote(_replace_index(spec, i))

    handles = [launch(i) for i in range(replicas)]
    try:
        infos = ray.get([h.describe.remote() for h in handles], timeout=START_TIMEOUT_S)
    except (RayError, GetTimeoutError) as exc:
        for handle in handles:
            ray.kill(handle)
        raise ModelError(f"the Ray replicas of model {spec.model} did not start: {_summary(exc)}") from exc
    engine = RayEngine(
        [_Replica(i, h, info) for i, (h, info) in enumerate(zip(handles, infos, strict=True))],
        starter=lambda i: _start_one(launch(i)),
        policy=policy,
    )
    engine.observer = observer
    engine.start()
    return engine


def _start_one(handle: Any) -> tuple[Any, ReplicaInfo]:
    """Wait until the actor `handle` has loaded its model (killed if it does not)."""
    import ray

    try:
        return handle, ray.get(handle.describe.remote(), timeout=START_TIMEOUT_S)
    except BaseException:
        ray.kill(handle)
        raise


def _replace_index(spec: ReplicaSpec, index: int) -> ReplicaSpec:
    from dataclasses import replace

    return replace(spec, index=index)


def _died(exc: Exception) -> bool:
    """Whether a Ray error says the replica is gone for good (not only unreachable for now)."""
    from ray.exceptions import ActorUnavailableError, NodeDiedError, RayActorError

    return isinstance(exc, NodeDiedError) or (
        isinstance(exc, RayActorError) and not isinstance(exc, ActorUnavailableError)
    )


def _kill(handle: Any) -> None:
    import ray

    try:
        ray.kill(handle)
    except Exception as exc:  # an actor Ray no longer knows, say
        log.debug("could not kill a replica's actor: %s", exc)


def _summary(exc: BaseException) -> str:
    """The line of a (Ray) error that says what happened: its last."""
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


class RayEngine:
    """The Engine protocol over replicas on Ray (see the module doc)."""

    def __init__(
        self,
        replicas: list[_Replica],
        *,
        starter: Starter | None = None,
        policy: RestartPolicy | None = None,
        kill: Callable[[Any], None] | None = None,
    ) -> None:
        """`starter`: how a dead replica is started again (None: it is not); `kill`: how an actor
        that is no longer used is stopped (default `ray.kill`)."""
        if not replicas:
            raise ValueError("a Ray engine needs at least one replica")
        self._replicas = replicas
        first = replicas[0].info
        self._info: ModelInfo = first.model
        self._template = (
            ChatTemplate(first.template_source, bos_token=first.bos_token, eos_token=first.eos_token)
            if first.template_source is not None
            else None
        )
        self._affinity = Affinity()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._closing = False
        self._starter = starter
        self._policy = policy or RestartPolicy()
        self._kill = kill or _kill
        self.observer: Observer | None = None

    def start(self) -> None:
        """Watch the replicas' health in the background."""
        self._watcher = threading.Thread(target=self._watch, name="ray-replicas", daemon=True)
        self._watcher.start()

    # ---- the Engine protocol --------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def chat_template(self) -> ChatTemplate | None:
        return self._template

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        return self._call("tokenize", text, special, bos)

    def has_special_text(self, text: str) -> bool:
        return self._call("has_special_text", text)

    def generate(self, request: GenerationRequest) -> EventStream:
        check_fits(request, self._info.n_ctx)
        check_logit_bias(request, self._info.n_vocab)
        if self._closing:
            raise EngineClosing("the engine is shutting down")
        with self._lock:
            replica = self._pick(request)
            replica.in_flight += 1
            replica.served += 1
            handle, generation = replica.handle, replica.generation
        self._affinity.record(request, replica.index)
        request_id = uuid.uuid4().hex
        try:
            generator = handle.generate.remote(request_id, request)
        except Exception:
            self._ended(replica, generation, request_id, True)
            raise
        return RayStream(
            generator,
            model=self._info.name,
            lost=lambda exc: self._lost(replica, generation, exc),
            ended=lambda finished: self._ended(replica, generation, request_id, finished),
            observer=self.observer,
        )

    def _pick(self, request: GenerationRequest) -> _Replica:
        """Under the lock: the replica for `request` (see ray_routing.choose)."""
        loads = [
            ReplicaLoad(r.index, r.alive, r.in_flight, r.info.n_slots + r.info.max_queue, r.served)
            for r in self._replicas
        ]
        preferred = self._affinity.preferred(request)
        slack = self._replicas[preferred].info.n_slots if preferred is not None else 0
        index = choose(loads, preferred, slack)
        if index is not None:
            return self._replicas[index]
        if not any(r.alive for r in self._replicas):
            raise UpstreamUnavailable(self._none_running())
        raise EngineBusyError(
            f"The server is busy: every replica of model {self._info.name} is full. Retry shortly.",
            retry_after_s=2.0,
        )

    def _none_running(self) -> str:
        starting = any(r.state == "starting" for r in self._replicas)
        return f"The model '{self._info.name}' is unavailable: none of its replicas is running" + (
            " (one is starting again; retry shortly)." if starting else "."
        )

    def _ended(self, replica: _Replica, generation: int, request_id: str, finished: bool) -> None:
        with self._lock:
            replica.in_flight -= 1
            current = replica.alive and replica.generation == generation
        if not finished and current:
            replica.handle.cancel.remote(request_id)  # fire and forget: the replica stops generating

    def _lost(self, replica: _Replica, generation: int, exc: Exception) -> Exception:
        """The error a stream ends with when Ray fails under it; a dead replica leaves rotation."""
        from ray.exceptions import RayTaskError

        if isinstance(exc, RayTaskError):
            return EngineError(f"a replica of model {self._info.name} failed: {_summary(exc)}")
        if _died(exc):
            self._mark_dead(replica, generation, f"its actor died ({type(exc).__name__})")
        return EngineLost(
            f"replica {replica.index} of model {self._info.name} went away mid-reply "
            f"({type(exc).__name__}); the reply so far is kept"
        )

    def _mark_dead(self, replica: _Replica, generation: int, why: str) -> None:
        """Take actor `generation` of `replica` out of rotation, and start a new one unless given up."""
        with self._lock:
            if not replica.alive or replica.generation != generation:
                return  # out of rotation already, or replaced since
            replica.alive, replica.error = False, why
            ran_s = time.monotonic() - replica.started
            # The first actor had loaded and served: its death is not a failed start.
            replica.failures = self._policy.failures_after_death(replica.failures, ran_s) if replica.restarts else 0
            again = self._starter is not None and not self._closing and not self._policy.gives_up(replica.failures)
            replica.state = "starting" if again else "dead"
        self._affinity.drop_replica(replica.index)
        log.error("replica %d of model %s is out of rotation: %s", replica.index, self._info.name, why)
        if again:
            name = f"ray-replace-{replica.index}"
            threading.Thread(target=self._replace, args=(replica,), name=name, daemon=True).start()
        elif self._starter is not None and not self._closing:
            self._give_up(replica, why)

    def _replace(self, replica: _Replica) -> None:
        """Start a new actor for `replica` after the back-off, retrying until it loads or is given up."""
        assert self._starter is not None
        self._kill(replica.handle)  # dead already; should it linger (hung, not gone), its resources come back
        while not self._stop.wait(self._policy.delay(replica.failures)):
            log.warning("starting replica %d of model %s again", replica.index, self._info.name)
            try:
                handle, info = self._starter(replica.index)
            except Exception as exc:
                with self._lock:
                    replica.failures += 1
                    replica.error = f"did not start again: {_summary(exc)}"
                    given_up = self._policy.gives_up(replica.failures)
                    replica.state = "dead" if given_up else "starting"
                if given_up:
                    self._give_up(replica, _summary(exc))
                    return
                continue
            if not self._install(replica, handle, info):
                self._kill(handle)  # the engine closed meanwhile
            return

    def _install(self, replica: _Replica, handle: Any, info: ReplicaInfo) -> bool:
        with self._lock:
            if self._closing:
                return False
            replica.handle, replica.info, replica.stats = handle, info, None
            replica.alive, replica.state, replica.error = True, "alive", None
            replica.generation += 1
            replica.restarts += 1
            replica.started = time.monotonic()
        log.warning(
            "replica %d of model %s is back in rotation (restart %d, pid %d on %s)",
            replica.index,
            self._info.name,
            replica.restarts,
            info.pid,
            info.node_ip,
        )
        return True

    def _give_up(self, replica: _Replica, why: str) -> None:
        log.error(
            "replica %d of model %s is given up after %d failed starts in a row (last: %s); "
            "the model runs on %d of its %d replicas until the server restarts",
            replica.index,
            self._info.name,
            replica.failures,
            why,
            len(self._alive()),
            len(self._replicas),
        )

    def stats(self) -> EngineStats:
        """Counters summed over the replicas (read every second); requests active and queued
        counted here, exactly."""
        with self._lock:
            reported = [r.stats for r in self._replicas if r.stats is not None]
            active = sum(min(r.in_flight, r.info.n_slots) for r in self._replicas)
            queued = sum(max(0, r.in_flight - r.info.n_slots) for r in self._replicas)
            errors = [r.error for r in self._replicas if r.error]
        totals = {
            f.name: sum(getattr(s, f.name) for s in reported)
            for f in fields(EngineStats)
            if f.name not in ("active", "queued", "last_error")
        }
        last = next((s.last_error for s in reported if s.last_error), None)
        return EngineStats(active=active, queued=queued, **totals, last_error=errors[0] if errors else last)

    def replicas(self) -> list[ReplicaStatus]:
        with self._lock:
            return [
                ReplicaStatus(
                    index=r.index,
                    alive=r.alive,
                    in_flight=r.in_flight,
                    served=r.served,
                    n_slots=r.info.n_slots,
                    pid=r.info.pid,
                    node_id=r.info.node_id,
                    node_ip=r.info.node_ip,
                    error=r.error,
                    state=r.state,
                    restarts=r.restarts,
                )
                for r in self._replicas
            ]

    def forget(self, scope: str, label: str | None = None) -> None:
        import ray
        from ray.exceptions import RayError

        self._affinity.forget(scope, label)
        for replica in self._alive():
            try:
                ray.get(replica.handle.forget.remote(scope, label), timeout=CALL_TIMEOUT_S)
            except RayError as exc:
                log.warning("replica %d could not forget %s: %s", replica.index, scope, _summary(exc))

    def close(self) -> None:
        """Stop the replicas (each saves its KV states to its disk) and leave the cluster."""
        import ray
        from ray.exceptions import GetTimeoutError, RayError

        if self._closing:
            return
        self._closing = True
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        with self._lock:
            alive = [r.handle for r in self._replicas if r.alive]
            handles = [r.handle for r in self._replicas]
        try:
            ray.get([handle.close.remote() for handle in alive], timeout=CALL_TIMEOUT_S)
        except (RayError, GetTimeoutError) as exc:
            log.warning("replicas did not close cleanly: %s", _summary(exc))
        for handle in handles:
            ray.kill(handle)

    # ---- calls and health -----------------------------------------------------------------------

    def _alive(self) -> list[_Replica]:
        with self._lock:
            return [r for r in self._replicas if r.alive]

    def _call(self, method: str, *args: Any) -> Any:
        """A quick blocking call on a live replica (the least busy); the next one if it died."""
        import ray
        from ray.exceptions import RayActorError

        while True:
            with self._lock:
                alive = sorted((r for r in self._replicas if r.alive), key=lambda r: r.in_flight)
                if not alive:
                    raise UpstreamUnavailable(self._none_running())
                replica = alive[0]
                handle, generation = replica.handle, replica.generation
            try:
                return ray.get(getattr(handle, method).remote(*args), timeout=CALL_TIMEOUT_S)
            except RayActorError as exc:
                if not _died(exc):
                    raise EngineLost(f"a replica of model {self._info.name} is unreachable") from exc
                self._mark_dead(replica, generation, f"its actor died ({type(exc).__name__})")

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            self._check()

    def _check(self) -> None:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayError

        with self._lock:
            current = [(r, r.handle, r.generation) for r in self._replicas if r.alive]
        for replica, handle, generation in current:
            try:
                stats = ray.get(handle.stats.remote(), timeout=CALL_TIMEOUT_S)
            except RayActorError as exc:
                if _died(exc):
                    self._mark_dead(replica, generation, f"its actor died ({type(exc).__name__})")
                continue
            except (RayError, GetTimeoutError) as exc:
                log.warning("replica %d did not report: %s", replica.index, _summary(exc))
                continue
            with self._lock:
                if replica.generation == generation:
                    replica.stats = stats
