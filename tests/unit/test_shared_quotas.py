"""Quotas counted in the database, as two API processes on one database see them: each gate
stands for one process (its own id, its own memory); the limits hold across them."""

from __future__ import annotations

import time

import pytest

from mingyan.accounts.quotas import QuotaExceeded, Subject
from mingyan.accounts.shared_quotas import SharedQuotaGate
from mingyan.store.accounts.types import Quota
from mingyan.store.conversations import ConversationStore
from mingyan.store.serving import SharedCounters


def gate(store: ConversationStore, process: str, ttl_s: float = 120.0) -> SharedQuotaGate:
    return SharedQuotaGate(SharedCounters(store.db, process, ttl_s=ttl_s))


def wait_until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_concurrent_streams_are_counted_across_processes(store: ConversationStore) -> None:
    one, two = gate(store, "one"), gate(store, "two")
    alice = [Subject("user:alice", Quota(concurrent_streams=1))]
    running = one.admit(alice)
    with pytest.raises(QuotaExceeded, match="already has 1 replies running"):
        two.admit(alice)
    assert two.admit([Subject("user:bob", Quota(concurrent_streams=1))])  # another user is not held up
    running.release()

    def admitted() -> bool:
        try:
            two.admit(alice).release()
            return True
        except QuotaExceeded:
            return False

    wait_until(admitted)  # the place is given back by a background thread
    one.close()
    two.close()


def test_requests_per_minute_are_counted_across_processes(store: ConversationStore) -> None:
    one, two = gate(store, "one"), gate(store, "two")
    limited = [Subject("key:k1", Quota(requests_per_minute=3))]
    for g in (one, two, one):
        g.admit(limited).release()
    with pytest.raises(QuotaExceeded, match="made 3 requests in the last minute") as refused:
        two.admit(limited)
    assert 0 < refused.value.retry_after_s <= 60
    one.close()
    two.close()


def test_a_crashed_process_places_expire(store: ConversationStore) -> None:
    crashed, alive = gate(store, "crashed", ttl_s=0.5), gate(store, "alive")
    alice = [Subject("user:alice", Quota(concurrent_streams=1))]
    crashed.admit(alice)  # never released, never renewed: the process is gone
    with pytest.raises(QuotaExceeded):
        alive.admit(alice)
    time.sleep(0.6)
    alive.admit(alice).release()
    alive.close()
