"""Two `mingyan serve` processes on one PostgreSQL behave as one service: a user limited to one
concurrent stream gets 429 from the second while a stream runs on the first, and a reply started
on one is re-attached (followed to its end) from the other."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.db import Database
from mingyan.store.migrate import upgrade
from tests.conftest import SMOLLM, stop_server
from tests.replicas import start_replicas

LONG = [{"role": "user", "content": "Count from 1 to 300, separated by commas."}]


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, postgres_server):
    server_url = make_url(postgres_server)
    name = f"t_{uuid.uuid4().hex}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server_url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    db = Database.open(url)
    accounts = AccountStore.open(db)
    alice = accounts.users.create_user("alice", "correct horse battery")
    accounts.ledger.set_quota(alice.id, concurrent_streams=1)
    _, key = accounts.keys.create_key(alice.id, "replicas")
    db.dispose()
    servers = start_replicas(tmp_path_factory.mktemp("replicas"), url, n_ctx=1024)
    yield servers, {"Authorization": f"Bearer {key}"}
    for server in servers:
        stop_server(server)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


def chat(server, headers, **body) -> httpx.Response:
    body = {"model": SMOLLM, "messages": LONG, "max_tokens": 8, "temperature": 0} | body
    return httpx.post(server.base_url + "/chat/completions", json=body, headers=headers, timeout=120)


def test_one_stream_at_a_time_across_processes(replicas):
    (first, second), headers = replicas
    body = {"model": SMOLLM, "messages": LONG, "max_tokens": 600, "temperature": 0, "stream": True}
    with httpx.stream("POST", first.base_url + "/chat/completions", json=body, headers=headers, timeout=120) as running:
        assert running.status_code == 200
        lines = running.iter_lines()
        assert next(line for line in lines if line.startswith("data: ")).startswith("data: {")
        refused = chat(second, headers)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "quota_exceeded" and "Retry-After" in refused.headers
    deadline = time.monotonic() + 10  # the place is given back once the first stream ends
    while (answer := chat(second, headers)).status_code == 429:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]


def test_a_reply_started_on_one_process_is_followed_from_the_other(replicas):
    (first, second), headers = replicas
    with httpx.Client(base_url=first.url + "/api", headers=headers, timeout=120) as one:
        cid = one.post("/conversations", json={"settings": {"max_tokens": 100, "temperature": 0}}).json()["id"]
        with one.stream("POST", f"/conversations/{cid}/messages", json={"content": LONG[0]["content"]}) as started:
            line = next(line for line in started.iter_lines() if line.startswith("data: "))
            start = json.loads(line[6:])
        assert start["type"] == "start"  # leaving the stream early does not stop the reply
    mid = start["message"]["id"]
    events = []
    with httpx.Client(base_url=second.url + "/api", headers=headers, timeout=120) as two:
        with two.stream("GET", f"/conversations/{cid}/messages/{mid}/events") as followed:
            assert followed.status_code == 200
            events = [json.loads(line[6:]) for line in followed.iter_lines() if line.startswith("data: ")]
        stored = two.get(f"/conversations/{cid}").json()
    assert events[0]["type"] == "snapshot" and events[-1]["type"] == "done"
    assert any(e["type"] == "delta" for e in events)  # followed while it was being generated
    text = events[0]["text"] + "".join(e["text"] for e in events if e["type"] == "delta")
    done = events[-1]["message"]
    assert done["status"] == "complete" and done["content"] == text and text.strip()
    assert next(m for m in stored["messages"] if m["id"] == mid)["content"] == text
