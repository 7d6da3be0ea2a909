"""Engine replicas on Ray, as /health and /metrics show them (per model and replica: state,
restarts, in flight, served). With several models (a ModelRouter), the Ray models loaded now."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mingyan.serving.ray_engine import RayEngine
from mingyan.serving.router import ModelRouter

# Where a replica runs stays off the public /health: /metrics (administrators) has it.
PRIVATE = ("pid", "node_id", "node_ip")
STATES = ("alive", "starting", "dead")


def ray_engines(engine: object) -> list[tuple[str, RayEngine]]:
    """(model, its RayEngine) for each model of `engine` running on Ray now."""
    if isinstance(engine, RayEngine):
        return [(engine.info.name, engine)]
    if isinstance(engine, ModelRouter):
        return [(name, e) for name, e in engine.loaded() if isinstance(e, RayEngine)]
    return []


def serves_on_ray(engine: object) -> bool:
    if isinstance(engine, ModelRouter):
        return any(s.where == "ray" for s in engine.status())
    return isinstance(engine, RayEngine)


def replica_status(engine: object) -> list[dict[str, Any]] | None:
    """Each replica's state (not where it runs) when `engine` runs models on Ray; None otherwise."""
    if not serves_on_ray(engine):
        return None
    return [
        {"model": model, **{k: v for k, v in dataclasses.asdict(r).items() if k not in PRIVATE}}
        for model, ray_engine in ray_engines(engine)
        for r in ray_engine.replicas()
    ]


class ReplicaCollector:
    """Prometheus gauges and counters per replica, read at scrape time."""

    def __init__(self, engine: object) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "replica", "node_ip"]
        in_flight = GaugeMetricFamily(
            "mingyan_replica_in_flight", "requests running or waiting on a replica", labels=labels
        )
        alive = GaugeMetricFamily(
            "mingyan_replica_alive", "1 while a replica is in rotation, 0 otherwise", labels=labels
        )
        state = GaugeMetricFamily(
            "mingyan_replica_state", "1 for a replica's state: alive, starting or dead", labels=[*labels, "state"]
        )
        restarts = CounterMetricFamily("mingyan_replica_restarts", "times a replica was replaced", labels=labels)
        served = CounterMetricFamily("mingyan_replica_requests", "requests sent to a replica", labels=labels)
        info = GaugeMetricFamily(
            "mingyan_replica_info", "where a replica runs (always 1)", labels=[*labels, "node_id", "pid"]
        )
        for model, ray_engine in ray_engines(self.engine):
            for r in ray_engine.replicas():
                values = [model, str(r.index), r.node_ip]
                in_flight.add_metric(values, r.in_flight)
                alive.add_metric(values, 1 if r.alive else 0)
                for name in STATES:
                    state.add_metric([*values, name], 1 if r.state == name else 0)
                restarts.add_metric(values, r.restarts)
                served.add_metric(values, r.served)
                info.add_metric([*values, r.node_id, str(r.pid)], 1)
        yield from (in_flight, alive, state, restarts, served, info)


def attach_replica_metrics(registry: Any, engine: object) -> None:
    """Register the per-replica metrics when `engine` runs models on Ray."""
    if serves_on_ray(engine):
        registry.register(ReplicaCollector(engine))
