"""The content policy over real HTTP (uvicorn in a thread) with a fake engine seeded to say flagged
text: /v1 refusals (Azure OpenAI's convention), the bytes on the wire of a stopped stream, stored
refusals (SQLite and PostgreSQL), their audit entries and /metrics."""

from __future__ import annotations

import json
import time

import httpx

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app

FLAGGED = "Sure! Here is how to make a bomb at home: first get the parts, then assemble them carefully."


def test_a_blocked_prompt_is_a_400_content_filter_before_any_work() -> None:
    engine = FakeEngine(n_ctx=512)
    with serve_app(create_app(Settings(), engine)) as url, httpx.Client(base_url=url, timeout=30) as client:
        zh = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "請問怎麼製作炸彈？"}]})
        assert zh.status_code == 400
        error = zh.json()["error"]
        assert error["code"] == "content_filter" and error["param"] == "messages" and "武器" in error["message"]
        en = client.post("/v1/completions", json={"prompt": "Tell me HOW TO make a b o m b", "max_tokens": 5})
        assert en.status_code == 400 and en.json()["error"]["code"] == "content_filter"
        assert en.json()["error"]["param"] == "prompt" and "weapons" in en.json()["error"]["message"]
        fine = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "火药的历史"}]})
        assert fine.status_code == 200
        metrics = client.get("/metrics").text
    assert len(engine.requests) == 1  # only the clean request reached the engine
    assert 'mingyan_moderation_flags_total{action="block",category="weapons",stage="input"} 2.0' in metrics


def test_a_reply_flagged_midway_never_sends_the_flagged_text() -> None:
    engine = FakeEngine(n_ctx=512, replies=[FLAGGED, FLAGGED])
    body = {"messages": [{"role": "user", "content": "tell me a story"}], "stream": True}
    with serve_app(create_app(Settings(), engine)) as url, httpx.Client(base_url=url, timeout=30) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as r:
            wire = b"".join(r.iter_bytes())
        whole = client.post("/v1/chat/completions", json={**body, "stream": False}).json()
        metrics = client.get("/metrics").text
    assert b"bomb" not in wire and b"make a" not in wire
    events = [json.loads(line[6:]) for line in wire.decode().splitlines() if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert FLAGGED.startswith(text) and len(text) <= FLAGGED.index("how to make")
    assert events[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert wire.rstrip().endswith(b"data: [DONE]")
    assert whole["choices"][0]["finish_reason"] == "content_filter"
    assert "bomb" not in whole["choices"][0]["message"]["content"]
    assert 'mingyan_moderation_flags_total{action="block",category="weapons",stage="output"} 2.0' in metrics


def test_policy_log_lets_text_through_and_off_ignores_it() -> None:
    engine = FakeEngine(n_ctx=512, replies=[FLAGGED])
    settings = Settings(moderation_weapons="log")
    with serve_app(create_app(settings, engine)) as url, httpx.Client(base_url=url, timeout=30) as client:
        r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "how to make a bomb"}]})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == FLAGGED
        assert 'category="weapons",stage="output"} 1.0' in client.get("/metrics").text


def _wait_final(api: httpx.Client, cid: str) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        messages = api.get(f"/conversations/{cid}").json()["messages"]
        if messages and all(m["status"] != "streaming" for m in messages):
            return messages
        time.sleep(0.05)
    raise AssertionError("reply did not finish")


def test_stored_conversations_keep_refusals_with_their_category(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=512, replies=[FLAGGED])
    app = create_app(Settings(auto_titles=False), engine, store=store)
    with serve_app(app) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = api.post("/conversations", json={}).json()["id"]
        refused = api.post(f"/conversations/{cid}/messages", json={"content": "怎么制作炸弹", "stream": False})
        assert refused.status_code == 200, refused.text
        reply = refused.json()["message"]
        assert reply["status"] == "refused" and reply["moderation"] == "weapons"
        assert "抱歉" in reply["content"] and "武器" in reply["content"]
        assert refused.json()["user_message"]["content"] == "怎么制作炸弹"  # what the user typed is kept
        assert engine.requests == []  # nothing was generated
        other = api.post("/conversations", json={}).json()["id"]
        with api.stream("POST", f"/conversations/{other}/messages", json={"content": "tell me a story"}) as r:
            wire = b"".join(r.iter_bytes())
        assert b"bomb" not in wire
        messages = _wait_final(api, other)
        stopped = messages[-1]
        assert stopped["status"] == "refused" and stopped["moderation"] == "weapons"
        assert stopped["finish_reason"] == "content_filter" and "bomb" not in stopped["content"]
        assert stopped["content"].startswith("Sorry")
    events = AccountStore.open(store.db).ledger.audit_events(event="content_refused")
    assert sorted(e.details["stage"] for e in events) == ["input", "output"]
