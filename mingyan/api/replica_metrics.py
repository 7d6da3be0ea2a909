"""Engine replicas on Ray, as /health and /metrics show them (per replica: in flight, served, alive)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mingyan.serving.ray_engine import RayEngine

# Where a replica runs stays off the public /health: /metrics (administrators) has it.
PRIVATE = ("pid", "node_id", "node_ip")


def replica_status(engine: object) -> list[dict[str, Any]] | None:
    """Each replica's state when `engine` runs on Ray (not where it runs); None otherwise."""
    if not isinstance(engine, RayEngine):
        return None
    return [{k: v for k, v in dataclasses.asdict(r).items() if k not in PRIVATE} for r in engine.replicas()]


class ReplicaCollector:
    """Prometheus gauges and counters per replica, read at scrape time."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "replica", "node_ip"]
        in_flight = GaugeMetricFamily(
            "mingyan_replica_in_flight", "requests running or waiting on a replica", labels=labels
        )
        alive = GaugeMetricFamily(
            "mingyan_replica_alive", "1 while a replica is in rotation, 0 once it died", labels=labels
        )
        served = CounterMetricFamily("mingyan_replica_requests", "requests sent to a replica", labels=labels)
        info = GaugeMetricFamily(
            "mingyan_replica_info", "where a replica runs (always 1)", labels=[*labels, "node_id", "pid"]
        )
        model = self.engine.info.name
        for r in self.engine.replicas():
            values = [model, str(r.index), r.node_ip]
            in_flight.add_metric(values, r.in_flight)
            alive.add_metric(values, 1 if r.alive else 0)
            served.add_metric(values, r.served)
            info.add_metric([*values, r.node_id, str(r.pid)], 1)
        yield from (in_flight, alive, served, info)


def attach_replica_metrics(registry: Any, engine: object) -> None:
    """Register the per-replica metrics when `engine` runs on Ray."""
    if isinstance(engine, RayEngine):
        registry.register(ReplicaCollector(engine))
