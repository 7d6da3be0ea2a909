"""Replacing dead Ray replicas (mingyan.serving.ray_restart and RayEngine's replacement): the
back-off, a replica back in rotation once its new actor has loaded, one that keeps failing to start
given up with a log line and `dead` on /health; replicas per model (--ray-model-replicas). No Ray
cluster: a replica's actor is a plain object and starting one is a function (the real cluster is
tests/integration/test_ray_replicas.py)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from mingyan.engine.base import GenerationRequest, ModelInfo
from mingyan.errors import ModelError, UpstreamUnavailable
from mingyan.serving.ray_connect import parse_model_replicas
from mingyan.serving.ray_engine import RayEngine, _Replica
from mingyan.serving.ray_replica import ReplicaInfo
from mingyan.serving.ray_restart import RestartPolicy

FAST = RestartPolicy(attempts=3, first_delay_s=0.01, max_delay_s=0.05, stable_s=60.0)


def info(pid: int) -> ReplicaInfo:
    model = ModelInfo(name="m", path="/m.gguf", sha256="0" * 64, n_ctx=512, n_ctx_train=512, architecture="llama")
    return ReplicaInfo(model, None, "", "", n_slots=1, max_queue=4, pid=pid, node_id="n", node_ip="127.0.0.1")


def engine(starter, policy: RestartPolicy = FAST, replicas: int = 2, killed: list | None = None) -> RayEngine:
    handles = [_Replica(i, f"actor-{i}", info(100 + i)) for i in range(replicas)]
    kill = killed.append if killed is not None else lambda handle: None
    return RayEngine(handles, starter=starter, policy=policy, kill=kill)


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def kill(ray_engine: RayEngine, index: int) -> None:
    """What the engine does when Ray says replica `index`'s current actor died."""
    replica = ray_engine._replicas[index]
    ray_engine._mark_dead(replica, replica.generation, "its actor died (ActorDiedError)")


def test_the_back_off_doubles_up_to_its_limit_and_a_quick_death_counts_as_a_failure() -> None:
    policy = RestartPolicy(attempts=3, first_delay_s=1.0, max_delay_s=5.0, stable_s=60.0)
    assert [policy.delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.failures_after_death(0, ran_s=3600.0) == 0  # ran a long time: starts afresh
    assert policy.failures_after_death(1, ran_s=5.0) == 2  # died soon after it started
    assert not policy.gives_up(2) and policy.gives_up(3)


def test_a_dead_replica_is_replaced_with_a_new_actor_and_serves_again() -> None:
    started: list[int] = []

    def starter(index: int):
        started.append(index)
        return f"new-actor-{index}", info(200 + index)

    killed: list = []
    ray_engine = engine(starter, killed=killed)
    kill(ray_engine, 1)
    wait_for(lambda: ray_engine.replicas()[1].state == "alive")
    status = ray_engine.replicas()[1]
    assert killed == ["actor-1"]  # the dead actor is stopped for good (its resources back)
    assert started == [1] and status.alive and status.restarts == 1 and status.pid == 201 and status.error is None
    assert ray_engine.replicas()[0].restarts == 0
    # An error from the old actor, arriving late, does not take the new one out of rotation.
    ray_engine._mark_dead(ray_engine._replicas[1], 0, "late news")
    assert ray_engine.replicas()[1].alive


def test_a_replica_that_keeps_failing_to_start_is_given_up(caplog) -> None:
    attempts = threading.Semaphore(0)

    def starter(index: int):
        attempts.release()
        raise RuntimeError("no room on the node")

    ray_engine = engine(starter)
    with caplog.at_level(logging.ERROR, logger="mingyan.serving.ray"):
        kill(ray_engine, 0)
        wait_for(lambda: ray_engine.replicas()[0].state == "dead")
    status = ray_engine.replicas()[0]
    assert not status.alive and status.restarts == 0 and "no room on the node" in (status.error or "")
    assert sum(attempts.acquire(blocking=False) for _ in range(10)) == FAST.attempts
    assert any("given up after 3 failed starts" in r.getMessage() for r in caplog.records)
    assert ray_engine.replicas()[1].state == "alive"


def test_with_every_replica_down_a_request_is_refused_saying_one_is_starting() -> None:
    gate = threading.Event()

    def starter(index: int):
        gate.wait(5)
        return object(), info(300)

    ray_engine = engine(starter, replicas=1)
    kill(ray_engine, 0)
    assert ray_engine.replicas()[0].state == "starting"
    with pytest.raises(UpstreamUnavailable, match="starting again"):
        ray_engine.generate(GenerationRequest(prompt_tokens=(1, 2, 3)))
    gate.set()
    wait_for(lambda: ray_engine.replicas()[0].alive)


def test_replicas_per_model() -> None:
    models = ["small", "big"]
    assert parse_model_replicas(["big=4"], models) == {"big": 4}
    assert parse_model_replicas([], models) == {}
    for bad, says in (("big", "NAME=N"), ("big=0", "NAME=N"), ("big=x", "NAME=N"), ("huge=2", "'huge'")):
        with pytest.raises(ModelError, match=says):
            parse_model_replicas([bad], models)
