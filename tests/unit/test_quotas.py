"""Quota arithmetic: requests per minute, tokens per day, concurrent streams; nothing counted when refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mingyan.accounts.quotas import QuotaExceeded, QuotaGate, Subject
from mingyan.store.accounts.types import Quota as Limits


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_requests_per_minute_slide() -> None:
    clock = Clock()
    gate = QuotaGate(clock=clock)
    user = Subject("user:a", Limits(requests_per_minute=2))
    gate.admit([user]).release()
    clock.t += 10
    gate.admit([user]).release()
    with pytest.raises(QuotaExceeded) as refused:
        gate.admit([user])
    assert refused.value.retry_after_s == pytest.approx(50) and "2 requests" in str(refused.value)
    clock.t += 50
    gate.admit([user]).release()  # the first request left the window


def test_concurrent_streams_are_released() -> None:
    gate = QuotaGate()
    user = Subject("user:a", Limits(concurrent_streams=1))
    first = gate.admit([user])
    with pytest.raises(QuotaExceeded, match="1 replies running"):
        gate.admit([user])
    first.release()
    first.release()  # releasing twice frees one place only
    assert gate.streams("user:a") == 0
    gate.admit([user])


def test_tokens_per_day_resets_at_midnight_utc() -> None:
    now = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    gate = QuotaGate(now=lambda: now)
    used = {"n": 999}
    user = Subject("user:a", Limits(tokens_per_day=1000), tokens_today=lambda: used["n"])
    gate.admit([user]).release()
    used["n"] = 1000
    with pytest.raises(QuotaExceeded) as refused:
        gate.admit([user])
    assert refused.value.retry_after_s == pytest.approx(3600) and "midnight UTC" in str(refused.value)
    assert gate.day_start() == datetime(2026, 11, 29, tzinfo=UTC)


def test_a_refusal_by_one_subject_counts_nothing_for_the_others() -> None:
    clock = Clock()
    gate = QuotaGate(clock=clock)
    user = Subject("user:a", Limits(requests_per_minute=5, concurrent_streams=5))
    key = Subject("key:k", Limits(concurrent_streams=1))
    held = gate.admit([user, key])
    with pytest.raises(QuotaExceeded, match="this API key"):
        gate.admit([user, key])
    assert gate.streams("user:a") == 1  # the refused request took no place
    held.release()
    assert gate.streams("user:a") == gate.streams("key:k") == 0
    for _ in range(4):  # 1 + 4 = 5 counted: the refused one was not
        gate.admit([user]).release()
    with pytest.raises(QuotaExceeded, match="your account made 5 requests"):
        gate.admit([user])


def test_no_limits_means_no_limits() -> None:
    gate = QuotaGate()
    for _ in range(1000):
        gate.admit([Subject("user:a", Limits())])
    assert gate.streams("user:a") == 1000
