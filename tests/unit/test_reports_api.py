"""Reports over real HTTP with accounts, on SQLite and PostgreSQL: a user reports a reply, the
queue is administrators' only (403), the content stays frozen, the admin answers, hides and
resolves, the reporter sees the outcome; every step is audited."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.reports import HIDDEN_NOTICE
from tests.app_server import serve_app

PASSWORD = "correct horse battery"


@pytest.fixture
def url(store: ConversationStore) -> Iterator[str]:
    accounts = AccountStore.open(store.db)
    accounts.users.create_user("root", PASSWORD, role="admin")
    accounts.users.create_user("alice", PASSWORD)
    accounts.users.create_user("bob", PASSWORD)
    with serve_app(create_app(Settings(auto_titles=False), FakeEngine(n_ctx=1024), store=store)) as base:
        yield base


def sign_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url + "/api", timeout=30)
    r = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def test_report_queue_review_hide_and_outcome(url: str, store: ConversationStore) -> None:
    alice, bob, root = sign_in(url, "alice"), sign_in(url, "bob"), sign_in(url, "root")
    cid = alice.post("/conversations", json={}).json()["id"]
    sent = alice.post(f"/conversations/{cid}/messages", json={"content": "说点什么", "stream": False}).json()
    reply_id = sent["message"]["id"]

    body = {"conversation_id": cid, "message_id": reply_id, "reason": "false", "details": "这个回答不对"}
    assert bob.post("/reports", json=body).status_code == 404  # not bob's conversation
    assert alice.post("/reports", json={**body, "reason": "boring"}).status_code == 400
    assert alice.post("/reports", json={**body, "colour": "red"}).status_code == 400
    made = alice.post("/reports", json=body)
    assert made.status_code == 201, made.text
    report = made.json()
    assert report["status"] == "open" and report["answer"] is None and "content" not in report

    assert alice.get("/admin/reports").status_code == 403
    assert bob.get("/admin/reports").status_code == 403
    assert bob.get("/reports").json()["data"] == []
    queue = root.get("/admin/reports", params={"status": "open"}).json()["data"]
    assert [r["id"] for r in queue] == [report["id"]]
    frozen = queue[0]["content"]
    assert [m["role"] for m in frozen] == ["user", "assistant"] and frozen[1]["content"] == "You said: 说点什么"

    assert root.patch(f"/admin/reports/{report['id']}", json={"status": "in_review"}).json()["status"] == "in_review"
    done = root.patch(
        f"/admin/reports/{report['id']}", json={"status": "resolved", "answer": "已核实并隐藏。", "hide": True}
    ).json()
    assert done["status"] == "resolved" and done["hidden"] and done["response_seconds"] >= 0
    assert done["content"][1]["content"] == "You said: 说点什么"  # the queue keeps it as reported
    assert root.patch("/admin/reports/nope", json={"status": "resolved"}).status_code == 404

    mine = alice.get("/reports").json()["data"]
    assert mine[0]["status"] == "resolved" and mine[0]["answer"] == "已核实并隐藏。" and mine[0]["hidden"]
    shown = alice.get(f"/conversations/{cid}").json()["messages"]
    assert [m["content"] for m in shown if m["id"] == reply_id] == [HIDDEN_NOTICE]
    assert root.get("/admin/reports", params={"status": "bogus"}).status_code == 400
    events = [e.event for e in AccountStore.open(store.db).ledger.audit_events(limit=20)]
    for event in ("report_created", "report_reviewed", "report_content_hidden"):
        assert event in events


def test_admins_edit_keyword_banks_versioned_audited_and_in_force(url: str, store: ConversationStore) -> None:
    alice, root = sign_in(url, "alice"), sign_in(url, "root")
    assert alice.get("/admin/moderation/banks").status_code == 403
    assert alice.put("/admin/moderation/banks/fraud", json={"phrases": ["x"]}).status_code == 403
    banks = {b["category"]: b for b in root.get("/admin/moderation/banks").json()["data"]}
    assert banks["fraud"]["source"] == "shipped" and banks["fraud"]["version"] == "1"
    phrases = [*banks["fraud"]["phrases"], "刷单返利"]
    edited = root.put("/admin/moderation/banks/fraud", json={"phrases": phrases})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == "1.1" and edited.json()["source"] == "edited"
    assert root.put("/admin/moderation/banks/nope", json={"phrases": []}).status_code == 404
    assert root.put("/admin/moderation/banks/fraud", json={"phrases": ["x" * 101]}).status_code == 400
    refused = alice.post("/conversations", json={}).json()["id"]
    reply = alice.post(f"/conversations/{refused}/messages", json={"content": "招聘刷 单 返 利兼职", "stream": False})
    assert reply.json()["message"]["status"] == "refused" and reply.json()["message"]["moderation"] == "fraud"
    versions = root.get("/admin/moderation/banks/fraud/versions").json()["data"]
    assert [v["version"] for v in versions] == ["1.1"] and versions[0]["phrases"][-1] == "刷单返利"
    (entry,) = AccountStore.open(store.db).ledger.audit_events(event="keyword_bank_changed")
    assert entry.target == "fraud" and entry.details["added"] == ["刷单返利"] and entry.details["removed"] == []
    # A restarted server keeps the edited bank.
    with serve_app(create_app(Settings(auto_titles=False), FakeEngine(n_ctx=1024), store=store)) as again:
        banks = {b["category"]: b for b in sign_in(again, "root").get("/admin/moderation/banks").json()["data"]}
    assert banks["fraud"]["version"] == "1.1" and "刷单返利" in banks["fraud"]["phrases"]


def _rows_of(store: ConversationStore, user_id: str) -> dict[str, int]:
    """Rows holding `user_id` (or their content) in every table that can."""
    queries = {
        "users": "SELECT count(*) FROM users WHERE id = :u",
        "login_sessions": "SELECT count(*) FROM login_sessions WHERE user_id = :u",
        "api_keys": "SELECT count(*) FROM api_keys WHERE user_id = :u",
        "quotas": "SELECT count(*) FROM quotas WHERE user_id = :u",
        "conversations": "SELECT count(*) FROM conversations WHERE owner = :u",
        "messages": "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE c.owner = :u",
        "reports": "SELECT count(*) FROM reports WHERE reporter_id = :u",
        "usage_records": "SELECT count(*) FROM usage_records WHERE user_id = :u",
    }
    if store.db.dialect == "sqlite":  # search entries whose conversation is gone
        queries["search_documents"] = (
            "SELECT count(*) FROM search_documents WHERE conversation_id NOT IN (SELECT id FROM conversations)"
        )
    with store.db.engine.connect() as connection:
        return {name: connection.execute(text(sql), {"u": user_id}).scalar_one() for name, sql in queries.items()}


def test_a_user_deletes_their_account_and_no_row_of_theirs_is_left(url: str, store: ConversationStore) -> None:
    alice, bob, root = sign_in(url, "alice"), sign_in(url, "bob"), sign_in(url, "root")
    ids = {}
    for name, client in (("alice", alice), ("bob", bob)):
        ids[name] = client.get("/auth/me").json()["user"]["id"]
        cid = client.post("/conversations", json={"title": f"{name}的对话"}).json()["id"]
        sent = client.post(f"/conversations/{cid}/messages", json={"content": f"{name} 你好", "stream": False})
        body = {"conversation_id": cid, "message_id": sent.json()["message"]["id"], "reason": "other"}
        assert client.post("/reports", json=body).status_code == 201
        assert client.post("/keys", json={"name": "k"}).status_code == 201
        assert root.put(f"/admin/users/{ids[name]}/quota", json={"tokens_per_day": 1000}).status_code == 200
    before = _rows_of(store, ids["alice"])
    assert all(before[t] > 0 for t in ("users", "conversations", "messages", "reports", "api_keys", "quotas"))
    assert alice.post("/auth/delete-account", json={"password": "wrong"}).status_code == 403
    assert alice.post("/auth/delete-account", json={"password": PASSWORD}).status_code == 204
    after = _rows_of(store, ids["alice"])
    assert set(after.values()) == {0}, after
    kept = _rows_of(store, ids["bob"])
    assert kept["messages"] == 2 and kept["reports"] == 1 and kept["users"] == 1
    assert alice.get("/conversations").status_code == 401  # her session went too
    assert root.post("/auth/delete-account", json={"password": PASSWORD}).status_code == 409  # the last admin
    (event,) = AccountStore.open(store.db).ledger.audit_events(event="user_deleted")
    assert event.target == "alice"
