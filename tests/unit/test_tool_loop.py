"""The tool loop of stored conversations over real HTTP with a fake engine whose replies are
canned tool calls, and the test MCP server over stdio: calls and results stored in the tree and
the export, SSE events, approvals (approve runs the call, deny does not), a hanging tool and a
server that is down become error results and the reply completes, regenerate across steps."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from tests.app_server import serve_app
from tests.conftest import free_port
from tests.unit.test_tool_servers import SERVER_SCRIPT


def call(name: str, **arguments) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


class Setup:
    def __init__(self, tmp: Path, replies: list[str]) -> None:
        self.tmp = tmp
        self.outbox = tmp / "outbox.txt"
        self.engine = FakeEngine(n_ctx=4096, replies=replies, family="qwen2")


@pytest.fixture
def served(tmp_path: Path, request) -> Iterator[tuple[httpx.Client, Setup]]:
    with serving(tmp_path, request.param) as served:
        yield served


@contextmanager
def serving(tmp_path: Path, replies: list[str], **settings: Any) -> Iterator[tuple[httpx.Client, Setup]]:
    """The app on real HTTP with the test MCP server registered as `local` (send_email needs
    approval) and `down` (nothing listens); the tool limits are settings."""
    setup = Setup(tmp_path, replies)
    url = default_url(tmp_path)
    upgrade(url)
    engine = open_database(url)
    store = ConversationStore(Database(engine))
    limits = {"tool_call_timeout_s": 60, "tool_approval_timeout_s": 60, **settings}  # room on a busy machine
    config = Settings(auto_titles=False, data_dir=tmp_path, quota_requests_per_minute=0, **limits)
    app = create_app(config, setup.engine, store=store)
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        args = [SERVER_SCRIPT, "--outbox", str(setup.outbox)]
        body = {"name": "local", "kind": "stdio", "command": sys.executable, "args": args}
        assert client.post("/api/admin/tool-servers", json={**body, "side_effecting": ["send_email"]}).is_success
        down = {"name": "down", "kind": "http", "url": f"http://127.0.0.1:{free_port()}/mcp"}
        assert client.post("/api/admin/tool-servers", json=down).is_success
        yield client, setup
    engine.dispose()


def events(response: httpx.Response) -> Iterator[dict]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def send(client: httpx.Client, text: str, tools=("local",), on_event=None) -> list[dict]:
    cid = client.post("/api/conversations", json={}).json()["id"]
    seen = []
    body = {"content": text, "tools": list(tools)}
    with client.stream("POST", f"/api/conversations/{cid}/messages", json=body) as r:
        assert r.status_code == 200, r.read()
        for event in events(r):
            seen.append(event)
            if on_event:
                on_event(cid, event)
    return seen


WEATHER = [call("get_weather", city="北京"), "北京今天晴，25°C。"]


@pytest.mark.parametrize("served", [WEATHER], indirect=True)
def test_a_call_and_its_result_are_stored_streamed_and_exported(served) -> None:
    client, _ = served
    seen = send(client, "北京今天天气怎么样？")
    types = [e["type"] for e in seen]
    assert types[0] == "start" and types[-1] == "done"
    assert {"tool_call", "tool_running", "tool_result", "step"} <= set(types)
    done = seen[-1]["message"]
    assert done["status"] == "complete" and done["content"] == "北京今天晴，25°C。"
    cid = done["conversation_id"]
    tree = client.get(f"/api/conversations/{cid}").json()
    path = [next(m for m in tree["messages"] if m["id"] == i) for i in tree["current_path"]]
    assert [m["role"] for m in path] == ["user", "assistant", "tool", "assistant"]
    calls = path[1]["tool"]["calls"]
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "北京"}
    assert path[1]["finish_reason"] == "tool_calls" and path[1]["content"] == ""
    result = path[2]
    assert "weather-probe-7731" in result["content"] and result["status"] == "complete"
    provenance = result["tool"]
    assert provenance["server"] == "local" and provenance["tool"] == "get_weather"
    assert provenance["error"] is None and provenance["result_size"] == len(result["content"])
    assert provenance["duration_ms"] >= 0 and provenance["call_id"] == calls[0]["id"]
    exported = client.get(f"/api/conversations/{cid}/export")
    assert exported.status_code == 200, exported.text
    messages = exported.json()["conversations"][0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[2]["tool"]["tool"] == "get_weather" and "weather-probe-7731" in messages[2]["content"]
    # regenerate from the final answer goes back over the tool steps to the user's message
    r = client.post(f"/api/conversations/{cid}/messages/{done['id']}/regenerate", json={"stream": False})
    assert r.status_code == 200, r.text
    assert r.json()["message"]["parent_id"] == path[0]["id"]
    # an imported copy keeps the steps
    imported = client.post("/api/import", content=exported.content)
    assert imported.status_code == 201, imported.text
    copies = [c for c in client.get("/api/conversations").json()["data"] if c["id"] != cid]
    copy = client.get(f"/api/conversations/{copies[0]['id']}").json()
    assert sorted(m["role"] for m in copy["messages"]).count("tool") == 1
    assert next(m for m in copy["messages"] if m["role"] == "tool")["tool"]["server"] == "local"


@pytest.mark.parametrize("served", [WEATHER], indirect=True)
def test_after_the_results_the_model_answers_from_them_restated_without_the_called_tool(served) -> None:
    client, setup = served
    seen = send(client, "北京今天天气怎么样？")
    result = next(e for e in seen if e["type"] == "tool_result")["message"]["content"]
    first, second = (setup.engine.detokenize(r.prompt_tokens) for r in setup.engine.requests[:2])
    assert '"name": "get_weather"' in first and result not in first
    # the answer step: the result restated in the user's turn with the instruction in Chinese ...
    last_user = second.rsplit("<|im_start|>user\n", 1)[1]
    assert last_user.startswith("北京今天天气怎么样？\n")
    assert f'get_weather({{"city": "北京"}}) 返回:\n{result}\n' in last_user
    assert "请根据以上工具结果，直接回答上面的问题。<|im_end|>" in last_user and "<tool_response>" not in second
    # ... and the tool it already called is not offered again (the others are, under the grammar)
    assert '"name": "get_weather"' not in second and '"name": "add"' in second
    assert setup.engine.requests[1].sampling.constraint is not None


HANG = [call("hang"), "It did not answer."]


def test_a_hanging_tool_times_out_into_an_error_result_and_the_reply_completes(tmp_path: Path) -> None:
    with serving(tmp_path, HANG, tool_call_timeout_s=3) as (client, _):
        seen = send(client, "wait")
    result = next(e for e in seen if e["type"] == "tool_result")["message"]
    assert result["tool"]["error"] and "did not answer within 3 s" in result["tool"]["error"]
    assert result["content"].startswith("error:")
    assert seen[-1]["message"]["status"] == "complete"


DOWN = [call("get_weather", city="x"), "The weather service is down."]


@pytest.mark.parametrize("served", [DOWN], indirect=True)
def test_a_server_that_is_down_is_a_notice_and_the_reply_completes(served) -> None:
    client, _ = served
    seen = send(client, "weather?", tools=("local", "down"))
    notices = [e["text"] for e in seen if e["type"] == "notice"]
    assert notices and "down" in notices[0] and "cannot be reached" in notices[0]
    assert seen[-1]["message"]["status"] == "complete"
    r = client.post("/api/conversations", json={})
    body = {"content": "x", "tools": ["nope"]}
    bad = client.post(f"/api/conversations/{r.json()['id']}/messages", json=body)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tools"


EMAIL = [
    call("send_email", to="a@example.com", body="hi"),
    "Sent.",
    call("send_email", to="b@example.com", body="x"),
    "Not sent.",
]


@pytest.mark.parametrize("served", [EMAIL], indirect=True)
def test_a_side_effecting_tool_waits_for_approval(served) -> None:
    client, setup = served
    pending: list[dict] = []

    def approve(cid: str, event: dict, answer: bool) -> None:
        if event["type"] == "tool_pending":
            pending.append(event["message"])
            # a reload while the call waits: the conversation's live reply, its snapshot shows the calls
            live = httpx.get(f"{client.base_url}/api/conversations/{cid}").json()["live"]
            assert len(live) == 1
            with httpx.stream("GET", f"{client.base_url}/api/conversations/{cid}/messages/{live[0]}/events") as r:
                snapshot = next(events(r))
            assert snapshot["type"] == "snapshot" and snapshot["message"]["tool"]["calls"][0]["name"] == "send_email"
            other = httpx.post(
                f"{client.base_url}/api/conversations/{cid}/messages/{event['message']['id']}/approval",
                json={"approve": answer},
            )
            assert other.status_code == 200, other.text

    seen = send(client, "mail a", on_event=lambda cid, e: approve(cid, e, True))
    result = next(e for e in seen if e["type"] == "tool_result")["message"]
    assert result["tool"]["approval"] == "approved" and result["content"] == "sent to a@example.com"
    assert setup.outbox.read_text() == "a@example.com\thi\n"
    seen = send(client, "mail b", on_event=lambda cid, e: approve(cid, e, False))
    result = next(e for e in seen if e["type"] == "tool_result")["message"]
    assert result["tool"]["approval"] == "denied" and "denied" in result["content"]
    assert setup.outbox.read_text() == "a@example.com\thi\n"  # the denied call never ran
    assert len(pending) == 2
    audited = {e["event"]: e for e in client.get("/api/admin/audit").json()["data"]}
    assert "tool_call_approved" in audited and "tool_call_denied" in audited
    arguments = pending[1]["tool"]["arguments"]
    assert audited["tool_call_denied"]["details"] == {
        "conversation": result["conversation_id"],
        "server": "local",
        "tool": "send_email",
        "arguments_sha256": hashlib.sha256(arguments.encode()).hexdigest(),
        "outcome": "denied",
    }
    assert audited["tool_call_denied"]["target"] == pending[1]["id"]
    mid = pending[0]["id"]
    late = client.post(
        f"/api/conversations/{result['conversation_id']}/messages/{mid}/approval", json={"approve": True}
    )
    assert late.status_code in (404, 409)


@pytest.mark.parametrize("served", [DOWN], indirect=True)
def test_a_server_that_goes_down_gives_the_model_an_error_result(served) -> None:
    client, _ = served
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVER_SCRIPT, "http", str(port)])
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        sid = client.post("/api/admin/tool-servers", json={"name": "flaky", "kind": "http", "url": url}).json()["id"]
        deadline = time.monotonic() + 30
        while client.post(f"/api/admin/tool-servers/{sid}/test").json()["error"] and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    seen = send(client, "weather?", tools=("flaky",))
    assert any(e["type"] == "notice" and "flaky" in e["text"] for e in seen)
    result = next(e for e in seen if e["type"] == "tool_result")["message"]
    assert result["tool"]["server"] == "flaky" and "cannot be reached" in result["tool"]["error"]
    assert result["content"].startswith("error:")
    assert seen[-1]["message"]["status"] == "complete"
