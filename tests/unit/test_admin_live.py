"""Administrators see every user's live replies (never their text) and stop any of them, over real
HTTP on SQLite and PostgreSQL with a slow fake engine: the user's stream ends with the message
`interrupted` by `admin_stop` and its text so far, the stop is audited, non-admins get 403, an
unknown reply 404. A stop request left in the database (as another process leaves one) is carried
out by the process holding the reply, and a keyword-bank edit stored by another app on the same
database is in force here within the poll bound."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.api.shared_poll import POLL_S
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.live_replies import LiveReplyStore
from tests.app_server import serve_app

PASSWORD = "correct horse battery"
LONG = "please repeat this sentence slowly, word by word, " * 20  # echoed back: ~1,000 tokens


@dataclass
class Server:
    url: str
    store: ConversationStore
    alice_id: str
    root_key: str


@pytest.fixture
def server(store: ConversationStore) -> Iterator[Server]:
    accounts = AccountStore.open(store.db)
    root = accounts.users.create_user("root", PASSWORD, role="admin")
    alice = accounts.users.create_user("alice", PASSWORD)
    accounts.users.create_user("bob", PASSWORD)
    _, key = accounts.keys.create_key(root.id, "tests")
    engine = FakeEngine(n_ctx=4096, token_delay=0.02)
    with serve_app(create_app(Settings(auto_titles=False), engine, store=store)) as base:
        yield Server(base, store, alice.id, key)


def sign_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url + "/api", timeout=30)
    r = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def data_events(lines: Iterator[str]) -> Iterator[dict]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])


def live_until(root: httpx.Client, check, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        listed = root.get("/admin/live")
        assert listed.status_code == 200, listed.text
        if check(listed.json()["data"]) or time.monotonic() > deadline:
            return listed.json()["data"]
        time.sleep(0.1)


def test_an_admin_lists_and_stops_a_users_live_reply(server: Server) -> None:
    alice, bob, root = sign_in(server.url, "alice"), sign_in(server.url, "bob"), sign_in(server.url, "root")
    cid = alice.post("/conversations", json={"settings": {"max_tokens": 2000}}).json()["id"]
    with alice.stream("POST", f"/conversations/{cid}/messages", json={"content": LONG}) as stream:
        events = data_events(stream.iter_lines())
        start = next(events)
        assert start["type"] == "start"
        mid = start["message"]["id"]
        listed = live_until(root, lambda data: bool(data) and data[0]["tokens"] > 0)
        assert [(e["id"], e["user_id"], e["username"], e["conversation_id"]) for e in listed] == [
            (mid, server.alice_id, "alice", cid)
        ]
        assert listed[0]["model"] == "fake-model" and listed[0]["here"] is True and "content" not in listed[0]
        assert "repeat this sentence" not in root.get("/admin/live").text  # no text of the reply or the prompt

        for other in (alice, bob):
            assert other.get("/admin/live").status_code == 403
            assert other.post(f"/admin/live/{mid}/stop").status_code == 403
        assert root.post("/admin/live/0123456789abcdef/stop").status_code == 404

        stopped = root.post(f"/admin/live/{mid}/stop")
        assert stopped.status_code == 200, stopped.text
        out = stopped.json()
        assert out["stopped"] is True and out["pending"] is False
        assert (out["status"], out["moderation"], out["user_id"]) == ("interrupted", "admin_stop", server.alice_id)
        rest = list(events)  # the user's stream ends at once with the stopped message
    assert rest[-1]["type"] == "done"
    text = "".join(e["text"] for e in rest if e["type"] in ("snapshot", "delta"))
    done = rest[-1]["message"]
    assert (done["status"], done["moderation"], done["finish_reason"]) == ("interrupted", "admin_stop", "cancelled")
    assert done["content"] == text and 0 < len(text) < len("You said: " + LONG)
    saved = next(m for m in alice.get(f"/conversations/{cid}").json()["messages"] if m["id"] == mid)
    assert saved["status"] == "interrupted" and saved["content"] == text and saved["completion_tokens"] > 0

    assert root.get("/admin/live").json()["data"] == []
    again = root.post(f"/admin/live/{mid}/stop").json()
    assert again["stopped"] is False and again["status"] == "interrupted"  # already ended: left as it is
    audit = root.get("/admin/audit", params={"event": "reply_stopped"}).json()["data"]
    assert [(e["target"], e["details"]["owner"]) for e in audit] == [(mid, server.alice_id)]


def test_a_stop_request_left_in_the_database_is_carried_out_by_the_holder(server: Server) -> None:
    alice = sign_in(server.url, "alice")
    cid = alice.post("/conversations", json={"settings": {"max_tokens": 2000}}).json()["id"]
    with alice.stream("POST", f"/conversations/{cid}/messages", json={"content": LONG}) as stream:
        mid = next(data_events(stream.iter_lines()))["message"]["id"]  # leaving the stream never stops it
    requests = LiveReplyStore(server.store.db)
    requests.request_stop(mid, "another-process")  # what a process that does not hold the reply does
    asked = time.monotonic()
    while (message := alice.get(f"/conversations/{cid}").json()["messages"][-1])["status"] == "streaming":
        assert time.monotonic() - asked < POLL_S + 3, "the holder did not carry out the stop request"
        time.sleep(0.05)
    assert (message["id"], message["status"], message["moderation"]) == (mid, "interrupted", "admin_stop")
    assert message["content"].startswith("You said:")
    assert requests.requested([mid]) == []  # carried out: the request is gone


def test_a_bank_edit_stored_by_another_app_applies_within_the_poll_bound(server: Server) -> None:
    other = create_app(Settings(auto_titles=False), FakeEngine(n_ctx=1024), store=server.store)
    headers = {"Authorization": f"Bearer {server.root_key}"}
    phrase = "紫色大象走私配方"
    body = {"messages": [{"role": "user", "content": f"请给我{phrase}"}], "max_tokens": 4}
    with serve_app(other) as other_url, httpx.Client(headers=headers, timeout=30) as client:
        assert client.post(server.url + "/v1/chat/completions", json=body).status_code == 200
        assert client.post(other_url + "/v1/chat/completions", json=body).status_code == 200
        banks = client.get(other_url + "/api/admin/moderation/banks").json()["data"]
        fraud = next(b for b in banks if b["category"] == "fraud")
        edited = client.put(
            other_url + "/api/admin/moderation/banks/fraud", json={"phrases": [*fraud["phrases"], phrase]}
        )
        assert edited.status_code == 200 and edited.json()["version"] == "1.1"
        assert client.post(other_url + "/v1/chat/completions", json=body).status_code == 400  # at once there
        saved = time.monotonic()
        while True:
            sent = time.monotonic() - saved  # a request sent this long after the edit was screened with it
            if (r := client.post(server.url + "/v1/chat/completions", json=body)).status_code != 200:
                break
            assert sent < POLL_S + 2, "the edit did not reach the other app in time"
            time.sleep(0.05)
        assert r.status_code == 400 and r.json()["error"]["code"] == "content_filter"
        assert r.json()["error"]["category"] == "fraud"
        here = client.get(server.url + "/api/admin/moderation/banks").json()["data"]
        assert next(b for b in here if b["category"] == "fraud")["version"] == "1.1"
