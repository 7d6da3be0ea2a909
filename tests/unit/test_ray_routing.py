"""Routing requests over engine replicas (mingyan.serving.ray_routing), and errors crossing to the API
process (ray_replica.WireError): no Ray needed."""

from __future__ import annotations

from mingyan.engine.base import GenerationRequest
from mingyan.errors import (
    ContextLengthError,
    EngineBusyError,
    EngineClosing,
    EngineError,
    InvalidRequestError,
)
from mingyan.serving.ray_connect import parse_resources
from mingyan.serving.ray_replica import WireError
from mingyan.serving.ray_routing import Affinity, ReplicaLoad, choose

SYSTEM = tuple(range(100, 140))  # a 40-token system prompt every conversation starts with


def load(index: int, in_flight: int = 0, *, served: int = 0, alive: bool = True, capacity: int = 10) -> ReplicaLoad:
    return ReplicaLoad(index, alive, in_flight, capacity, served)


def request(tokens: tuple[int, ...], scope: str = "alice", label: str = "") -> GenerationRequest:
    return GenerationRequest(prompt_tokens=tokens, cache_scope=scope, cache_label=label)


def test_new_requests_go_to_the_least_busy_then_the_least_served() -> None:
    assert choose([load(0, 3), load(1, 1), load(2, 2)], None, 2) == 1
    assert choose([load(0, 0, served=5), load(1, 0, served=4)], None, 2) == 1
    assert choose([load(0, 0), load(1, 0)], None, 2) == 0


def test_a_preferred_replica_keeps_its_requests_within_the_slack() -> None:
    assert choose([load(0, 2), load(1, 0)], 0, 2) == 0  # busier by 2 = slack: stays
    assert choose([load(0, 3), load(1, 0)], 0, 2) == 1  # busier by 3: the least busy
    assert choose([load(0, 0, alive=False), load(1, 4)], 0, 2) == 1  # dead: elsewhere
    assert choose([load(0, 10), load(1, 9)], 0, 20) == 1  # full (capacity 10): elsewhere


def test_no_replica_open_is_none() -> None:
    assert choose([load(0, alive=False), load(1, 10)], None, 2) is None


def test_a_conversation_goes_back_to_the_replica_that_served_it() -> None:
    affinity = Affinity()
    affinity.record(request(SYSTEM + (1, 2, 3), label="c1"), 1)
    assert affinity.preferred(request(SYSTEM + (9,), label="c1")) == 1
    assert affinity.preferred(request(SYSTEM + (9,), scope="bob", label="c1")) is None  # another owner's
    affinity.forget("alice", "c1")
    assert affinity.preferred(request(SYSTEM + (9,), label="c1")) is None


def test_a_prompt_that_continues_an_earlier_one_follows_it_within_its_owner_only() -> None:
    affinity = Affinity()
    first = SYSTEM + tuple(range(1, 30))
    affinity.record(request(first), 0)
    affinity.record(request(SYSTEM + tuple(range(500, 530))), 1)
    follow_up = first + tuple(range(900, 950))
    assert affinity.preferred(request(follow_up)) == 0
    assert affinity.preferred(request(follow_up, scope="bob")) is None
    # Sharing only the system prompt is not continuing a conversation.
    assert affinity.preferred(request(SYSTEM + tuple(range(700, 730)))) is None


def test_a_dead_replica_is_forgotten() -> None:
    affinity = Affinity()
    affinity.record(request(SYSTEM + (1,), label="c1"), 1)
    affinity.record(request(SYSTEM + (2,) * 20), 1)
    affinity.drop_replica(1)
    assert affinity.preferred(request(SYSTEM + (1,), label="c1")) is None
    assert affinity.preferred(request(SYSTEM + (2,) * 30)) is None


def test_errors_cross_as_values_and_come_back_as_the_same_kind() -> None:
    busy = WireError.of(EngineBusyError("full", retry_after_s=7.0)).error()
    assert isinstance(busy, EngineBusyError) and busy.retry_after_s == 7.0 and str(busy) == "full"
    too_long = WireError.of(ContextLengthError(5000, 10, 2048)).error()
    assert isinstance(too_long, InvalidRequestError) and too_long.code == "context_length_exceeded"
    assert too_long.param == "messages" and "2048" in str(too_long)
    assert isinstance(WireError.of(EngineClosing("bye")).error(), EngineClosing)
    assert type(WireError.of(EngineError("boom")).error()) is EngineError


def test_replica_resources() -> None:
    assert parse_resources("node_a") == {"node_a": 1.0}
    assert parse_resources("gpu_box=0.5, big=2") == {"gpu_box": 0.5, "big": 2.0}
    for bad in ("=1", "a=x", "a=0"):
        try:
            parse_resources(bad)
        except Exception as exc:  # noqa: BLE001 - the kind is checked below
            assert "NAME=AMOUNT" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")
