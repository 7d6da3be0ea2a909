"""MCP tool servers: the client over stdio and streamable HTTP against a server written in the
tests (the SDK's MCPServer), and the admin API (real HTTP, a fake engine, real SQLite)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from mingyan.tools import client
from mingyan.tools.types import ServerConfig
from tests import mcp_test_server
from tests.app_server import serve_app
from tests.conftest import free_port

SERVER_SCRIPT = str(Path(mcp_test_server.__file__).resolve())
PASSWORD = "correct horse battery"
SECRET = "sk-do-not-leak-4242"


def stdio_config(**kw) -> ServerConfig:
    return ServerConfig("test", "stdio", command=sys.executable, args=(SERVER_SCRIPT,), **kw)


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The test server over streamable HTTP on 127.0.0.1, requiring a bearer token."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVER_SCRIPT, "http", str(port), "--auth"])
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


def test_stdio_child_lists_and_calls_and_sees_none_of_the_servers_secrets(monkeypatch) -> None:
    monkeypatch.setenv("MINGYAN_DATABASE_URL", f"postgresql://mingyan:{SECRET}@db/mingyan")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    listing = asyncio.run(client.list_tools(stdio_config()))
    assert listing.error is None
    tools = {t.name: t for t in listing.tools}
    assert {"get_weather", "environment", "hang", "send_email", "add"} <= set(tools)
    assert tools["add"].input_schema["required"] == ["a", "b"]
    added = asyncio.run(client.call_tool(stdio_config(), "add", {"a": 2, "b": 40}))
    assert (added.text, added.is_error, added.size) == ("42", False, 2)
    env = asyncio.run(client.call_tool(stdio_config(), "environment", {})).text
    names = {line.split("=", 1)[0] for line in env.splitlines()}
    assert SECRET not in env
    assert not any(name.startswith("MINGYAN_") for name in names)
    assert names <= {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_CTYPE"}


def test_a_hanging_tool_times_out_into_an_error_result() -> None:
    started = time.monotonic()
    outcome = asyncio.run(client.call_tool(stdio_config(), "hang", {}, timeout=2))
    assert outcome.is_error and "did not answer within 2 s" in (outcome.error or "")
    assert outcome.text.startswith("error:")
    assert time.monotonic() - started < 10


def test_a_long_result_is_cut_and_its_size_kept() -> None:
    outcome = asyncio.run(client.call_tool(stdio_config(), "environment", {}, max_chars=10))
    assert len(outcome.text) == 10 and outcome.truncated and outcome.size > 10


def test_http_server_with_auth_headers_and_a_server_that_is_down(http_server: str) -> None:
    good = ServerConfig("web", "http", url=http_server, headers={"Authorization": "Bearer test-token"})
    outcome = asyncio.run(client.call_tool(good, "get_weather", {"city": "北京"}))
    assert not outcome.is_error and "weather-probe-7731" in outcome.text and outcome.text.startswith("北京")
    unauthorized = asyncio.run(client.list_tools(ServerConfig("web", "http", url=http_server)))
    assert unauthorized.error is not None
    down = ServerConfig("down", "http", url=f"http://127.0.0.1:{free_port()}/mcp")
    outcome = asyncio.run(client.call_tool(down, "get_weather", {"city": "x"}, timeout=5))
    assert outcome.is_error and "cannot be reached" in (outcome.error or "")
    missing = ServerConfig("gone", "stdio", command="/nonexistent/mcp-server")
    assert asyncio.run(client.list_tools(missing)).error


# ---- the admin API ---------------------------------------------------------------------------


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[tuple[str, AccountStore]]:
    url = default_url(tmp_path)
    upgrade(url)
    engine = open_database(url)
    store = ConversationStore(Database(engine))
    accounts = AccountStore.open(store.db)
    accounts.users.create_user("root", PASSWORD, role="admin")
    accounts.users.create_user("carol", PASSWORD)
    settings = Settings(auto_titles=False, data_dir=tmp_path, quota_requests_per_minute=0)
    with serve_app(create_app(settings, FakeEngine(n_ctx=2048), store=store)) as base:
        yield base, accounts
    engine.dispose()


def sign_in(url: str, username: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=60)
    r = c.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def test_admins_register_test_enable_and_remove_servers_audited(app_url, http_server: str, tmp_path: Path) -> None:
    url, accounts = app_url
    admin, carol = sign_in(url, "root"), sign_in(url, "carol")
    stdio = {"name": "local", "kind": "stdio", "command": sys.executable, "args": [SERVER_SCRIPT]}
    assert carol.post("/api/admin/tool-servers", json=stdio).status_code == 403
    assert carol.get("/api/admin/tool-servers").status_code == 403
    r = admin.post("/api/admin/tool-servers", json={**stdio, "side_effecting": ["send_email"]})
    assert r.status_code == 201, r.text
    local = r.json()
    assert admin.post("/api/admin/tool-servers", json=stdio).status_code == 409
    web = {"name": "web", "kind": "http", "url": http_server, "headers": {"Authorization": "Bearer test-token"}}
    r = admin.post("/api/admin/tool-servers", json=web)
    assert r.status_code == 201 and r.json()["has_headers"] is True
    assert "test-token" not in r.text and "test-token" not in admin.get("/api/admin/tool-servers").text
    raw = accounts.db.engine.connect().exec_driver_sql("SELECT headers_secret FROM tool_servers").all()
    assert all("test-token" not in (row[0] or "") for row in raw)  # encrypted at rest
    bad = {"name": "x", "kind": "http", "command": "ls"}
    assert admin.post("/api/admin/tool-servers", json=bad).status_code == 400
    tested = admin.post(f"/api/admin/tool-servers/{r.json()['id']}/test").json()
    assert tested["error"] is None and "get_weather" in [t["name"] for t in tested["tools"]]
    tested = admin.post(f"/api/admin/tool-servers/{local['id']}/test").json()
    email = next(t for t in tested["tools"] if t["name"] == "send_email")
    assert email["side_effecting"] is True and email["input_schema"]["properties"]["to"]
    assert sorted(carol.get("/api/tools").json()["data"]) == ["local", "web"]
    r = admin.patch(f"/api/admin/tool-servers/{local['id']}", json={"enabled": False})
    assert r.json()["enabled"] is False and carol.get("/api/tools").json()["data"] == ["web"]
    assert admin.delete(f"/api/admin/tool-servers/{local['id']}").status_code == 204
    assert admin.delete(f"/api/admin/tool-servers/{local['id']}").status_code == 404
    events = [e["event"] for e in admin.get("/api/admin/audit", params={"limit": 100}).json()["data"]]
    assert events.count("tool_server_added") == 2
    assert "tool_server_changed" in events and "tool_server_removed" in events
    assert (tmp_path / "tool-secrets.key").stat().st_mode & 0o077 == 0
