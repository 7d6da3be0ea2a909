"""/api/conversations over real HTTP (uvicorn in a thread), a fake engine, and real SQLite / PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(n_ctx=512)


def start(engine: FakeEngine, store: ConversationStore, **settings):
    settings.setdefault("auto_titles", False)
    return serve_app(create_app(Settings(**settings), engine, store=store))


@pytest.fixture
def api(engine: FakeEngine, store: ConversationStore) -> Iterator[httpx.Client]:
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as client:
        yield client


def new_conversation(api: httpx.Client, **body) -> dict:
    r = api.post("/conversations", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def send(api: httpx.Client, cid: str, content: str, **body) -> dict:
    r = api.post(f"/conversations/{cid}/messages", json={"content": content, "stream": False, **body})
    assert r.status_code == 200, r.text
    return r.json()


def sse(lines: Iterator[str]) -> Iterator[dict]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])


def counts(store: ConversationStore) -> tuple[int, int]:
    with store.engine.connect() as c:
        return (
            c.exec_driver_sql("SELECT count(*) FROM conversations").scalar(),
            c.exec_driver_sql("SELECT count(*) FROM messages").scalar(),
        )


def wait_until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached")


# ---- conversations -----------------------------------------------------------------------------


def test_conversation_crud(api: httpx.Client) -> None:
    a = new_conversation(api, title="数学", system_prompt="Be brief.", settings={"temperature": 0.2})
    assert (a["title"], a["model"], a["settings"], a["pinned"]) == ("数学", "fake-model", {"temperature": 0.2}, False)
    b = new_conversation(api)
    r = api.patch(f"/conversations/{b['id']}", json={"title": "Renamed", "pinned": True})
    assert r.status_code == 200 and r.json()["title"] == "Renamed" and r.json()["pinned"] is True
    listed = api.get("/conversations").json()
    assert [c["id"] for c in listed["data"]] == [b["id"], a["id"]] and listed["has_more"] is False
    assert api.get("/conversations", params={"limit": 1}).json()["has_more"] is True
    api.patch(f"/conversations/{a['id']}", json={"archived": True, "system_prompt": None})
    assert [c["id"] for c in api.get("/conversations").json()["data"]] == [b["id"]]
    archived = api.get("/conversations", params={"archived": True}).json()["data"]
    assert {c["id"] for c in archived} == {a["id"], b["id"]}
    only = api.get("/conversations", params={"archived_only": True}).json()["data"]
    assert [c["id"] for c in only] == [a["id"]]
    detail = api.get(f"/conversations/{a['id']}").json()
    assert detail["system_prompt"] is None and detail["messages"] == [] and detail["current_path"] == []
    assert detail["created_at"].endswith("Z")
    assert api.delete(f"/conversations/{a['id']}").status_code == 204
    r = api.get(f"/conversations/{a['id']}")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert api.delete(f"/conversations/{a['id']}").status_code == 404


@pytest.mark.parametrize(
    "body, param",
    [
        ({"title": "x" * 201}, "title"),
        ({"colour": "red"}, "colour"),
        ({"settings": {"temperature": 9}}, "settings.temperature"),
        ({"settings": {"stop": ["x"] * 17}}, "settings.stop"),
        ({"system_prompt": 5}, "system_prompt"),
    ],
)
def test_bad_conversation_bodies_are_400_and_write_nothing(
    api: httpx.Client, store: ConversationStore, body, param
) -> None:
    before = counts(store)
    r = api.post("/conversations", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert counts(store) == before


def test_bad_message_bodies_are_400_and_write_nothing(api: httpx.Client, store: ConversationStore) -> None:
    cid = new_conversation(api)["id"]
    before = counts(store)
    for body in (
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 100_001},
        {"content": 3},
        {"content": "hi", "settings": {"top_p": 0}},
        {"content": "hi", "extra": 1},
        {"content": "hi", "settings": {"seed": 2**31}},
    ):
        r = api.post(f"/conversations/{cid}/messages", json=body)
        assert r.status_code == 400, (body, r.text)
    r = api.post(f"/conversations/{cid}/messages", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = api.post(f"/conversations/{cid}/messages", json={"content": "hi", "parent_id": "nope"})
    assert r.status_code == 404
    r = api.post("/conversations/unknown/messages", json={"content": "hi"})
    assert r.status_code == 404
    assert counts(store) == before


# ---- replies -----------------------------------------------------------------------------------


def test_send_records_provenance_and_server_assembles_context(api: httpx.Client, engine: FakeEngine) -> None:
    cid = new_conversation(api, system_prompt="Answer in 中文.", settings={"max_tokens": 200, "seed": 7})["id"]
    first = send(api, cid, "你好")
    user, reply = first["user_message"], first["message"]
    assert (user["role"], user["content"], user["parent_id"]) == ("user", "你好", None)
    assert (reply["role"], reply["status"], reply["content"]) == ("assistant", "complete", "You said: 你好")
    assert reply["parent_id"] == user["id"] and reply["finish_reason"] == "stop"
    assert reply["model_name"] == "fake-model" and reply["model_sha256"] == "0" * 64
    assert reply["seed"] == 7 and reply["sampling"]["max_tokens"] == 200
    assert reply["completion_tokens"] == len("You said: 你好") and reply["prompt_tokens"] > 0
    assert reply["duration_ms"] is not None and reply["omitted_turns"] is None
    second = send(api, cid, "second", settings={"temperature": 0.0})
    prompt = engine.detokenize(engine.requests[-1].prompt_tokens)
    assert prompt.startswith("<|im_start|>system\nAnswer in 中文.<|im_end|>")
    assert "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\nYou said: 你好<|im_end|>" in prompt
    assert engine.requests[-1].sampling.temperature == 0.0 and engine.requests[-1].sampling.seed == 7
    detail = api.get(f"/conversations/{cid}").json()
    assert detail["current_path"] == [user["id"], reply["id"], second["user_message"]["id"], second["message"]["id"]]


def test_stream_events_start_snapshot_deltas_done(api: httpx.Client) -> None:
    cid = new_conversation(api)["id"]
    with api.stream("POST", f"/conversations/{cid}/messages", json={"content": "stream me"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = list(sse(r.iter_lines()))
    assert [e["type"] for e in events[:2]] == ["start", "snapshot"]
    assert events[0]["message"]["status"] == "streaming" and events[0]["user_message"]["content"] == "stream me"
    text = events[1]["text"] + "".join(e["text"] for e in events if e["type"] == "delta")
    assert events[-1]["type"] == "done"
    assert events[-1]["message"]["content"] == text == "You said: stream me"
    assert events[-1]["message"]["status"] == "complete"


def test_regenerate_edit_and_switch_branch(api: httpx.Client) -> None:
    cid = new_conversation(api)["id"]
    first = send(api, cid, "one")
    send(api, cid, "two")
    r = api.post(f"/conversations/{cid}/messages/{first['message']['id']}/regenerate", json={"stream": False})
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["user_message"] is None and again["message"]["parent_id"] == first["user_message"]["id"]
    edited = api.post(
        f"/conversations/{cid}/messages/{first['user_message']['id']}/edit", json={"content": "uno", "stream": False}
    ).json()
    assert edited["user_message"]["parent_id"] is None and edited["message"]["content"] == "You said: uno"
    detail = api.get(f"/conversations/{cid}").json()
    roots = [m for m in detail["messages"] if m["parent_id"] is None]
    assert [m["content"] for m in roots] == ["one", "uno"]
    assert detail["current_path"] == [edited["user_message"]["id"], edited["message"]["id"]]
    # back to the first branch: its latest leaf (the regenerated reply) becomes current
    r = api.post(f"/conversations/{cid}/branch", json={"message_id": first["user_message"]["id"]})
    assert r.status_code == 200 and r.json()["current_leaf_id"] == again["message"]["id"]
    # a user message cannot be regenerated from an edit of an assistant one, and vice versa
    r = api.post(f"/conversations/{cid}/messages/{first['message']['id']}/edit", json={"content": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "message_id"


def test_context_overflow_drops_oldest_turns_and_says_how_many(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=400)
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = new_conversation(api, system_prompt="SYS", settings={"max_tokens": 60})["id"]
        for i in range(6):
            reply = send(api, cid, f"turn {i} " + "x" * 30)["message"]
        assert reply["omitted_turns"] and reply["omitted_turns"] > 0
        prompt = engine.detokenize(engine.requests[-1].prompt_tokens)
        assert prompt.startswith("<|im_start|>system\nSYS") and "turn 5" in prompt and "turn 0" not in prompt
        assert len(engine.requests[-1].prompt_tokens) + 60 <= 400
        kept = sum(f"turn {i} " in prompt for i in range(6))
        assert kept + reply["omitted_turns"] == 6
        # one message too long even alone: refused, nothing written
        before = counts(store)
        r = api.post(f"/conversations/{cid}/messages", json={"content": "y" * 500, "stream": False})
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        assert counts(store) == before


def test_client_disconnect_does_not_lose_the_reply_and_reattach_sees_it_all(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=2048, token_delay=0.01)
    content = "long " * 60
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = new_conversation(api)["id"]
        with api.stream("POST", f"/conversations/{cid}/messages", json={"content": content}) as r:
            events = sse(r.iter_lines())
            started = next(events)
            next(events)  # snapshot
            next(events)  # a first delta
        mid = started["message"]["id"]  # the client went away here
        assert api.get(f"/conversations/{cid}").json()["live"] == [mid]
        with api.stream("GET", f"/conversations/{cid}/messages/{mid}/events") as r:
            attached = list(sse(r.iter_lines()))
        assert attached[0]["type"] == "snapshot" and attached[0]["text"]  # the text so far, first
        text = attached[0]["text"] + "".join(e["text"] for e in attached if e["type"] == "delta")
        assert text == "You said: " + content == attached[-1]["message"]["content"]
        assert attached[-1]["message"]["status"] == "complete"
        # attaching to a finished reply answers with it at once
        with api.stream("GET", f"/conversations/{cid}/messages/{mid}/events") as r:
            done = list(sse(r.iter_lines()))
        assert [e["type"] for e in done] == ["done"] and done[0]["message"]["content"] == text
        assert engine.cancelled == 0


def test_partial_text_is_saved_while_streaming(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=2048, token_delay=0.02)
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = new_conversation(api)["id"]
        with api.stream("POST", f"/conversations/{cid}/messages", json={"content": "z" * 150}) as r:
            mid = next(sse(r.iter_lines()))["message"]["id"]
        saved = wait_until(lambda: store.get_message("local", mid).content, timeout=5)
        message = store.get_message("local", mid)
        assert message.status == "streaming" and 0 < len(saved) < len("You said: " + "z" * 150)
        assert ("You said: " + "z" * 150).startswith(saved)
        r = api.post(f"/conversations/{cid}/messages/{mid}/stop")
        assert r.status_code == 200 and r.json()["status"] == "stopped"
        assert r.json()["finish_reason"] == "cancelled" and len(r.json()["content"]) >= len(saved)
        assert store.get_message("local", mid).status == "stopped"
        assert api.post(f"/conversations/{cid}/messages/{mid}/stop").json()["status"] == "stopped"  # idempotent


def test_sending_while_a_reply_runs_is_409(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=2048, token_delay=0.02)
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = new_conversation(api)["id"]
        with api.stream("POST", f"/conversations/{cid}/messages", json={"content": "q" * 100}) as r:
            mid = next(sse(r.iter_lines()))["message"]["id"]
        before = counts(store)
        r = api.post(f"/conversations/{cid}/messages", json={"content": "next"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "reply_in_progress"
        assert counts(store) == before
        api.post(f"/conversations/{cid}/messages/{mid}/stop")
        assert send(api, cid, "next")["message"]["status"] == "complete"


def test_busy_engine_keeps_the_user_message(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=2048, token_delay=0.02, max_active=1)
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        a, b = new_conversation(api)["id"], new_conversation(api)["id"]
        with api.stream("POST", f"/conversations/{a}/messages", json={"content": "w" * 100}) as r:
            next(sse(r.iter_lines()))
        r = api.post(f"/conversations/{b}/messages", json={"content": "kept"})
        assert r.status_code == 429 and r.headers["retry-after"] == "2"
        messages = api.get(f"/conversations/{b}").json()["messages"]
        assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "error")]
        assert messages[0]["content"] == "kept" and "busy" in messages[1]["error"]


def test_shutdown_mid_reply_saves_it_as_interrupted(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=2048, token_delay=0.02)
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = new_conversation(api)["id"]
        with api.stream("POST", f"/conversations/{cid}/messages", json={"content": "v" * 200}) as r:
            events = sse(r.iter_lines())
            mid = next(events)["message"]["id"]
            next(events), next(events)
    message = store.get_message("local", mid)
    assert message.status == "interrupted" and message.content
    assert ("You said: " + "v" * 200).startswith(message.content)
    assert message.finish_reason == "cancelled"


def test_deleting_a_conversation_stops_its_reply(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=2048, token_delay=0.02)
    with start(engine, store) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = new_conversation(api)["id"]
        with api.stream("POST", f"/conversations/{cid}/messages", json={"content": "d" * 200}) as r:
            next(sse(r.iter_lines()))
        assert api.delete(f"/conversations/{cid}").status_code == 204
        assert counts(store) == (0, 0)
        wait_until(lambda: engine.active == 0)


def test_title_after_first_exchange_unless_renamed(store: ConversationStore) -> None:
    engine = FakeEngine(n_ctx=2048)
    with start(engine, store, auto_titles=True) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        cid = new_conversation(api)["id"]
        send(api, cid, "How do I bake bread?")
        title = wait_until(lambda: api.get(f"/conversations/{cid}").json()["title"])
        assert 0 < len(title) <= 60
        titled_prompt = engine.detokenize(engine.requests[-1].prompt_tokens)
        assert "How do I bake bread?" in titled_prompt and engine.requests[-1].sampling.max_tokens == 24
        named = new_conversation(api, title="Mine")["id"]
        send(api, named, "hello")
        # A third conversation's title is made after any (wrongly) scheduled one for `named`: once it
        # is there, the engine has had every title request it will get.
        third = new_conversation(api)["id"]
        send(api, third, "What is rye?")
        wait_until(lambda: api.get(f"/conversations/{third}").json()["title"])
        title_requests = [r for r in engine.requests if r.sampling.max_tokens == 24]
        assert len(title_requests) == 2
        assert api.get(f"/conversations/{named}").json()["title"] == "Mine"


# ---- search ------------------------------------------------------------------------------------


def test_search_route_finds_chinese_and_english(api: httpx.Client) -> None:
    cid = new_conversation(api, title="旅行")["id"]
    send(api, cid, "长城在北京吗？")
    send(api, cid, "Tell me about the Great Wall")
    other = new_conversation(api)["id"]
    send(api, other, "unrelated")
    hits = api.get("/search", params={"q": "北京"}).json()
    assert hits["object"] == "list" and hits["has_more"] is False
    assert {h["conversation_id"] for h in hits["data"]} == {cid}
    hit = hits["data"][0]
    start, end = hit["match"][0]
    assert hit["snippet"][start:end] == "北京" and hit["updated_at"].endswith("Z")
    english = api.get("/search", params={"q": "great WALL"}).json()["data"]
    assert english and all(h["conversation_id"] == cid for h in english)
    assert len(api.get("/search", params={"q": "said", "limit": 1}).json()["data"]) == 1
    assert api.get("/search", params={"q": "said", "limit": 1}).json()["has_more"] is True
    for bad in ({"q": "   "}, {"q": "x" * 201}, {}, {"q": "a", "limit": 0}):
        r = api.get("/search", params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["param"] in ("q", "limit")


# ---- export / import ---------------------------------------------------------------------------


def test_export_import_round_trip_is_byte_identical(api: httpx.Client, store: ConversationStore) -> None:
    cid = new_conversation(api, title="往返 round trip", system_prompt="简短", settings={"seed": 3})["id"]
    first = send(api, cid, "第一 🐉")
    send(api, cid, "second")
    api.post(f"/conversations/{cid}/messages/{first['message']['id']}/regenerate", json={"stream": False})
    exported = api.get("/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/json"
    assert exported.headers["content-disposition"].startswith('attachment; filename="mingyan-')
    original = exported.content
    assert api.delete(f"/conversations/{cid}").status_code == 204
    r = api.post("/import", content=original, headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json() == {"conversation_ids": [cid], "message_count": 5, "remapped": 0, "skipped": {}}
    again = api.get("/export").content
    assert again == original
    # importing it a second time keeps both: the copy gets fresh ids
    r = api.post("/import", content=again)
    assert r.status_code == 201 and r.json()["remapped"] == 1 and r.json()["conversation_ids"] != [cid]
    one = api.get(f"/conversations/{cid}/export").content
    assert one == original
    markdown = api.get(f"/conversations/{cid}/export", params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "往返 round trip" in markdown.text and "第一 🐉" in markdown.text and "1 other branch" in markdown.text


def test_chatgpt_import_over_http(api: httpx.Client) -> None:
    from pathlib import Path

    data = (Path(__file__).parent.parent / "fixtures" / "chatgpt_conversations.json").read_bytes()
    r = api.post("/import", content=data)
    assert r.status_code == 201, r.text
    result = r.json()
    assert result["message_count"] > 0 and result["skipped"]
    detail = api.get(f"/conversations/{result['conversation_ids'][0]}").json()
    assert detail["messages"] and detail["current_path"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"format": "mingyan-conversations", "version": 2, "conversations": []}',
        b'{"format": "mingyan-conversations", "version": 1, "conversations": [{"id": "x"}]}',
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_bad_import_files_are_400_and_write_nothing(api: httpx.Client, store: ConversationStore, body: bytes) -> None:
    new_conversation(api)
    before = counts(store)
    r = api.post("/import", content=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_import_file" and "Traceback" not in error["message"]
    assert counts(store) == before


def test_import_size_limit_is_its_own(engine: FakeEngine, store: ConversationStore) -> None:
    with start(engine, store, max_body_bytes=2048, max_import_bytes=4096) as url:
        with httpx.Client(base_url=url + "/api", timeout=30) as api:
            assert api.post("/import", content=b" " * 3000).status_code == 400  # past the body limit, under its own
            r = api.post("/import", content=b" " * 5000)
            assert r.status_code == 413 and "4096" in r.json()["error"]["message"]
            assert api.post("/conversations", json={"title": "x" * 150, "system_prompt": "y" * 3000}).status_code == 413


def test_huge_paging_numbers_are_400_not_500(api: httpx.Client) -> None:
    """Found by schemathesis: an offset past 2**63 reached the database."""
    for path, params in (("/conversations", {}), ("/search", {"q": "x"}), ("/admin/audit", {})):
        r = api.get(path, params={**params, "offset": 926674713551473266400302202880})
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["param"] == "offset"


def test_nul_characters_are_refused_everywhere(api: httpx.Client, store: ConversationStore) -> None:
    """PostgreSQL cannot store NUL; found by schemathesis on PostgreSQL. Nothing is written."""
    cid = new_conversation(api)["id"]
    before = counts(store)
    r = api.post(f"/conversations/{cid}/messages", json={"content": "a\u0000b"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "content"
    assert api.post("/conversations", json={"title": "x\u0000"}).status_code == 400
    assert api.post("/conversations", json={"settings": {"stop": ["\u0000"]}}).status_code == 400
    assert api.get(f"/conversations/{cid}%00").status_code == 400
    assert api.get("/search", params={"q": "a\u0000"}).status_code == 400
    r = api.get("/admin/audit", params={"event": "x\u0000"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_url"
    assert counts(store) == before
