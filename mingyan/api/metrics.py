"""Prometheus metrics: one registry per app (no process globals)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mingyan.engine.base import EngineStats, RequestTiming

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80)
TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1, 2)


def _same(stats: EngineStats) -> EngineStats:
    return stats


class _EngineCollector:
    """Reads the engines' own counters at scrape time, so nothing is counted twice: one engine's,
    or (`per_model`) those of each loaded model."""

    def __init__(
        self,
        model: str,
        stats: Callable[[], EngineStats] | None,
        per_model: Callable[[], list[tuple[str, EngineStats]]] | None = None,
    ) -> None:
        self.model, self.stats, self.per_model = model, stats, per_model

    def collect(self) -> Iterator[Metric]:
        if self.per_model is not None:
            for model, stats in self.per_model():
                yield from _EngineCollector(model, partial(_same, stats)).collect()
            return
        assert self.stats is not None
        s = self.stats()
        gauges = {
            "mingyan_queue_depth": ("requests waiting for a slot", s.queued),
            "mingyan_active_slots": ("slots generating now", s.active),
            "mingyan_draft_acceptance_rate": (
                "share of speculative draft tokens accepted (0 before any draft)",
                s.accepted_tokens_total / s.drafted_tokens_total if s.drafted_tokens_total else 0.0,
            ),
            "mingyan_draft_model_acceptance_rate": (
                "share of the draft model's tokens accepted (0 before any; see --draft-model)",
                s.model_accepted_tokens_total / s.model_drafted_tokens_total if s.model_drafted_tokens_total else 0.0,
            ),
        }
        for name, (doc, value) in gauges.items():
            family = GaugeMetricFamily(name, doc, labels=["model"])
            family.add_metric([self.model], value)
            yield family
        counters = {
            "mingyan_prompt_tokens": ("prompt tokens received", s.prompt_tokens_total),
            "mingyan_cached_prompt_tokens": ("prompt tokens reused from cache", s.cached_tokens_total),
            "mingyan_generated_tokens": ("tokens generated", s.generated_tokens_total),
            "mingyan_prefill_tokens": ("prompt tokens evaluated (not from cache)", s.prefill_tokens_total),
            "mingyan_cancelled_requests": ("requests cancelled by their client", s.cancelled_total),
            "mingyan_engine_errors": ("engine steps that failed (their requests ended with an error)", s.errors_total),
            "mingyan_draft_tokens": ("tokens drafted by speculative decoding", s.drafted_tokens_total),
            "mingyan_draft_accepted_tokens": ("drafted tokens accepted", s.accepted_tokens_total),
            "mingyan_draft_model_tokens": ("drafted tokens the draft model proposed", s.model_drafted_tokens_total),
            "mingyan_draft_model_accepted_tokens": ("draft-model tokens accepted", s.model_accepted_tokens_total),
        }
        for name, (doc, value) in counters.items():
            counter = CounterMetricFamily(name, doc, labels=["model"])
            counter.add_metric([self.model], value)
            yield counter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ttft = Histogram(
            "mingyan_time_to_first_token_seconds",
            "submission to first token",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tpot = Histogram(
            "mingyan_time_per_output_token_seconds",
            "mean time per token after the first",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.queued = Histogram(
            "mingyan_queue_wait_seconds",
            "time waiting for a slot",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.finished = Counter(
            "mingyan_requests_finished",
            "finished requests by reason",
            ["model", "finish_reason"],
            registry=self.registry,
        )
        self._attached = False

    def observe(self, timing: RequestTiming) -> None:
        """Engine observer (runs on the decode thread; prometheus_client is thread-safe)."""
        if timing.ttft_s is not None:
            self.ttft.labels(timing.model).observe(timing.ttft_s)
        if timing.tpot_s is not None:
            self.tpot.labels(timing.model).observe(timing.tpot_s)
        self.queued.labels(timing.model).observe(timing.queued_s)
        self.finished.labels(timing.model, timing.finish_reason.value).inc()

    def attach(self, model: str, stats: Callable[[], EngineStats]) -> None:
        if not self._attached:
            self.registry.register(_EngineCollector(model, stats))
            self._attached = True

    def attach_models(self, per_model: Callable[[], list[tuple[str, EngineStats]]]) -> None:
        """Several models: their counters, each labelled with its model."""
        if not self._attached:
            self.registry.register(_EngineCollector("", None, per_model))
            self._attached = True

    def render(self) -> bytes:
        return generate_latest(self.registry)
