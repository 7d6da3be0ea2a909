"""Administrators' actions reach every `mingyan serve` process on one PostgreSQL (API replicas), with
the real SmolLM2: a keyword-bank edit made on one process blocks the new phrase on the other within
the poll bound, and a reply running on one process is listed and stopped from the other."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from mingyan.api.shared_poll import POLL_S
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.db import Database
from mingyan.store.migrate import upgrade
from tests.conftest import SMOLLM, stop_server
from tests.replicas import start_replicas

COUNT = "Count from 1 to 1000, separated by commas."


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
    root = accounts.users.create_user("root", "correct horse battery", role="admin")
    alice = accounts.users.create_user("alice", "correct horse battery")
    keys = {
        "root": accounts.keys.create_key(root.id, "replicas")[1],
        "alice": accounts.keys.create_key(alice.id, "r")[1],
    }
    db.dispose()
    servers = start_replicas(tmp_path_factory.mktemp("replica-admin"), url, n_ctx=2048)
    yield servers, {who: {"Authorization": f"Bearer {key}"} for who, key in keys.items()}, alice.id
    for server in servers:
        stop_server(server)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


def test_a_bank_edit_on_one_process_blocks_on_the_other_within_the_bound(replicas) -> None:
    (first, second), headers, _ = replicas
    phrase = "violet elephant smuggling recipe"
    body = {"model": SMOLLM, "messages": [{"role": "user", "content": f"Share the {phrase}."}], "max_tokens": 2}
    with httpx.Client(headers=headers["root"], timeout=120) as root:
        assert root.post(second.base_url + "/chat/completions", json=body).status_code == 200
        banks = root.get(first.url + "/api/admin/moderation/banks").json()["data"]
        fraud = next(b for b in banks if b["category"] == "fraud")["phrases"]
        edited = root.put(first.url + "/api/admin/moderation/banks/fraud", json={"phrases": [*fraud, phrase]})
        assert edited.status_code == 200, edited.text
        saved = time.monotonic()
        while True:  # the same pipeline without the model, so a busy machine's decode time does not count
            sent = time.monotonic() - saved
            check = root.post(second.base_url + "/moderations", json={"input": body["messages"][0]["content"]})
            if check.json()["results"][0]["flagged"]:
                break
            assert sent < POLL_S + 2, "the other process did not apply the edit in time"
            time.sleep(0.05)
        r = root.post(second.base_url + "/chat/completions", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "content_filter", r.text
        took = sent
        listed = root.get(second.url + "/api/admin/moderation/banks").json()["data"]
    assert next(b for b in listed if b["category"] == "fraud")["version"] == edited.json()["version"]
    print(f"bank edit in force on the other process after {took:.2f} s (bound {POLL_S + 2:.0f} s)")


def test_an_admin_on_one_process_stops_a_reply_running_on_the_other(replicas) -> None:
    (first, second), headers, alice_id = replicas
    settings = {"max_tokens": 1500, "temperature": 0}
    with httpx.Client(base_url=first.url + "/api", headers=headers["alice"], timeout=120) as alice:
        cid = alice.post("/conversations", json={"settings": settings}).json()["id"]
        with alice.stream("POST", f"/conversations/{cid}/messages", json={"content": COUNT}) as stream:
            events = (json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: "))
            mid = next(events)["message"]["id"]
            with httpx.Client(base_url=second.url + "/api/admin", headers=headers["root"], timeout=60) as root:
                deadline = time.monotonic() + 60  # listed once its first text is saved (tokens so far > 0)
                while not (listed := [e for e in root.get("/live").json()["data"] if e["id"] == mid and e["tokens"]]):
                    assert time.monotonic() < deadline, "the reply never showed in the other process's list"
                    time.sleep(0.2)
                assert (listed[0]["user_id"], listed[0]["here"], listed[0]["conversation_id"]) == (alice_id, False, cid)
                asked = time.monotonic()
                stopped = root.post(f"/live/{mid}/stop")
                took = time.monotonic() - asked
            rest = list(events)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["stopped"] is True and stopped.json()["status"] == "interrupted"
    done = rest[-1]
    assert done["type"] == "done" and done["message"]["moderation"] == "admin_stop"
    assert done["message"]["status"] == "interrupted" and done["message"]["content"].strip()
    print(f"stop carried out by the other process in {took:.2f} s")
