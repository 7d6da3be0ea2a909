"""Quotas counted in the database, as two API processes on one database see them: each gate
stands for one process (its own id, its own memory); the limits hold across them."""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from mingyan.accounts.quotas import QuotaExceeded, Subject
from mingyan.accounts.shared_quotas import SharedQuotaGate
from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.types import Quota
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, open_database
from mingyan.store.migrate import upgrade
from mingyan.store.serving import SharedCounters
from mingyan.store.tables import ServingStream
from tests.app_server import serve_app


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


# ---- the background thread: backs off while the database is away, stops with the app -------------


@pytest.fixture
def pg_store(postgres_server: str) -> Iterator[tuple[ConversationStore, Engine, str]]:
    """A migrated store on a database of its own, an admin engine on the cluster, and the database's name."""
    name = f"t_{uuid.uuid4().hex}"
    admin = create_engine(make_url(postgres_server), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    engine = open_database(url)
    try:
        yield ConversationStore(Database(engine)), admin, name
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def cut_off(admin: Engine, name: str, away: bool) -> None:
    """The database refuses new connections and its open ones are ended (`away`), or takes them again."""
    with admin.connect() as c:
        c.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if away else "true"}')
        if away:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})


def test_places_given_back_while_the_database_is_away_are_given_back_when_it_returns(pg_store, caplog) -> None:
    store, admin, name = pg_store
    one = SharedQuotaGate(SharedCounters(store.db, "one"), retry_s=(0.05, 0.2))
    users = [[Subject(f"user:u{i}", Quota(concurrent_streams=1))] for i in range(3)]
    running = [one.admit(subjects) for subjects in users]
    caplog.set_level(logging.INFO, logger="mingyan.accounts.shared_quotas")
    cut_off(admin, name, away=True)
    try:
        for admission in running:  # three replies end while the database is away
            admission.release()
            time.sleep(0.4)  # several tries fail meanwhile (pauses of 0.05 … 0.2 s)
    finally:
        cut_off(admin, name, away=False)
    two = SharedQuotaGate(SharedCounters(store.db, "two"))

    def all_given_back() -> bool:
        try:
            for subjects in users:
                two.admit(subjects).release()
            return True
        except QuotaExceeded:
            return False

    wait_until(all_given_back)  # nothing was lost while the database was away
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("quota places not updated")]) == 1, messages  # said once
    assert messages.count("quota places updated again: the database answers") == 1, messages
    one.close()
    two.close()
    assert not one.running and not two.running


def test_the_thread_stops_with_the_app(pg_store) -> None:
    store = pg_store[0]
    AccountStore.open(store.db).users.create_user("alice", "correct horse battery")
    app = create_app(Settings(auto_titles=False), FakeEngine(n_ctx=2048), store=store)
    gate = app.state.context.meter.gate
    assert isinstance(gate, SharedQuotaGate)
    with serve_app(app) as url:
        client = httpx.Client(base_url=url, timeout=60)
        r = client.post("/api/auth/login", json={"username": "alice", "password": "correct horse battery"})
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        assert gate.running  # started by the first admission that counts places
    assert not gate.running  # lifespan shutdown stopped it
    with store.db.sessions.begin() as session:
        assert session.query(ServingStream).count() == 0  # and this process's places are cleared


def test_a_gate_dropped_without_closing_ends_its_thread(store: ConversationStore) -> None:
    before = set(threading.enumerate())
    dropped = gate(store, "dropped")
    dropped.admit([Subject("user:alice", Quota(concurrent_streams=1))]).release()
    started = [t for t in set(threading.enumerate()) - before if t.name == "quota-places"]
    assert len(started) == 1
    del dropped
    gc.collect()
    started[0].join(timeout=5)
    assert not started[0].is_alive()
