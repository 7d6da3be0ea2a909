"""Tools in stored conversations on the default model (qwen2.5-coder-0.5b) with MCP servers
written in the tests, over stdio and over streamable HTTP on 127.0.0.1 (with an auth header): the
model calls the tool, gets its result and answers; the call and the result are in the stored
tree and the export; the stdio child's environment holds none of the server's secrets; kill -9
in the middle of a loop leaves the steps so far stored and the reply `interrupted`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, free_port, start_server, stop_server
from tests.mcp_test_server import TOKEN
from tests.unit.test_tool_servers import SERVER_SCRIPT

SECRET = "sk-server-secret-5150"


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVER_SCRIPT, "http", str(port), "--auth", "--tools", "get_weather"])
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory, mcp_http: str) -> Iterator[tuple[Server, httpx.Client]]:
    saved = dict(os.environ)
    os.environ["OPENAI_API_KEY"] = SECRET  # a secret of the mingyan server the tool child must not see
    os.environ["DATABASE_URL"] = f"postgresql://u:{SECRET}@db/x"
    try:
        server = start_server(tmp_path_factory.mktemp("toolchat"), None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    client = httpx.Client(base_url=server.url, timeout=600)
    # each server offers one tool: the 0.5B model picks reliably among few
    weather_only = [SERVER_SCRIPT, "--tools", "get_weather"]
    stdio = {"name": "local", "kind": "stdio", "command": sys.executable, "args": weather_only}
    env = {"name": "env", "kind": "stdio", "command": sys.executable, "args": [SERVER_SCRIPT, "--tools", "environment"]}
    assert client.post("/api/admin/tool-servers", json=env).status_code == 201
    assert client.post("/api/admin/tool-servers", json=stdio).status_code == 201
    web = {"name": "web", "kind": "http", "url": mcp_http, "headers": {"Authorization": f"Bearer {TOKEN}"}}
    assert client.post("/api/admin/tool-servers", json=web).status_code == 201
    yield server, client
    client.close()
    stop_server(server)


def ask(client: httpx.Client, text: str, tools: list[str], **settings) -> tuple[str, dict]:
    cid = client.post("/api/conversations", json={"settings": {"temperature": 0, **settings}}).json()["id"]
    r = client.post(f"/api/conversations/{cid}/messages", json={"content": text, "tools": tools, "stream": False})
    assert r.status_code == 200, r.text
    return cid, r.json()


def path_of(client: httpx.Client, cid: str) -> list[dict]:
    tree = client.get(f"/api/conversations/{cid}").json()
    by_id = {m["id"]: m for m in tree["messages"]}
    return [by_id[i] for i in tree["current_path"]]


@pytest.mark.parametrize("server_name", ["local", "web"])
def test_the_default_model_calls_a_tool_and_answers_after_its_result(qwen, server_name: str) -> None:
    _, client = qwen
    cid, exchange = ask(client, "北京今天天气怎么样？", [server_name])
    path = path_of(client, cid)
    roles = [m["role"] for m in path]
    assert roles[:3] == ["user", "assistant", "tool"] and roles[-1] == "assistant"
    call = path[1]["tool"]["calls"][0]
    assert call["name"] == "get_weather" and call["server"] == server_name
    assert json.loads(call["arguments"])["city"] in ("北京", "Beijing", "北京市")
    result = path[2]
    assert "weather-probe-7731" in result["content"] and result["tool"]["server"] == server_name
    final = exchange["message"]
    assert final["status"] == "complete" and final["id"] == path[-1]["id"] and final["content"]
    exported = client.get(f"/api/conversations/{cid}/export").json()
    stored = exported["conversations"][0]["messages"]
    assert any(m["role"] == "tool" and "weather-probe-7731" in m["content"] for m in stored)
    assert any((m.get("tool") or {}).get("calls") for m in stored)


def test_the_default_model_answers_with_the_tools_value(qwen) -> None:
    _, client = qwen
    _, exchange = ask(client, "北京今天天气怎么样？", ["local"])
    assert "25" in exchange["message"]["content"] or "晴" in exchange["message"]["content"]


def test_the_stdio_child_sees_none_of_the_servers_secrets(qwen) -> None:
    _, client = qwen
    cid, _ = ask(client, "列出工具服务器的环境变量。", ["env"])
    results = [m for m in path_of(client, cid) if m["role"] == "tool"]
    assert results and results[0]["tool"]["tool"] == "environment", [m["tool"] for m in results]
    text = results[0]["content"]
    assert "PATH=" in text and SECRET not in text and "MINGYAN_" not in text and "DATABASE_URL" not in text


def test_a_reload_reattaches_and_kill_9_leaves_the_steps_so_far_interrupted(qwen) -> None:
    """Last in this module: it kills the module's server."""
    server, client = qwen
    tmp = server.log.parent
    weather = [SERVER_SCRIPT, "--tools", "get_weather"]
    body = {"name": "approve", "kind": "stdio", "command": sys.executable, "args": weather}
    assert client.post("/api/admin/tool-servers", json={**body, "side_effecting": ["get_weather"]}).is_success
    cid = client.post("/api/conversations", json={"settings": {"temperature": 0}}).json()["id"]
    pending = None
    with client.stream(
        "POST", f"/api/conversations/{cid}/messages", json={"content": "北京今天天气怎么样？", "tools": ["approve"]}
    ) as r:
        for event in sse(r.iter_lines()):
            if event["type"] == "tool_pending":
                pending = event["message"]
                break
    assert pending is not None and pending["tool"]["approval"] == "pending"
    # a reload: the page reads the conversation and attaches to its live reply
    live = client.get(f"/api/conversations/{cid}").json()["live"]
    assert len(live) == 1
    with client.stream("GET", f"/api/conversations/{cid}/messages/{live[0]}/events") as r:
        snapshot = next(sse(r.iter_lines()))
    assert snapshot["type"] == "snapshot" and snapshot["message"]["tool"]["calls"][0]["name"] == "get_weather"
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    again = start_server(tmp, None)
    try:
        client = httpx.Client(base_url=again.url, timeout=120)
        path = path_of(client, cid)
        assert [m["role"] for m in path] == ["user", "assistant", "tool"]
        assert path[1]["status"] == "complete" and path[1]["tool"]["calls"][0]["name"] == "get_weather"
        assert path[2]["status"] == "interrupted" and path[2]["tool"]["approval"] == "pending"
        assert path[2]["id"] == pending["id"]
    finally:
        stop_server(again)


def sse(lines) -> Iterator[dict]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])
