"""Tools in the web chat: the composer's switch, a call and its result shown collapsed with JSON,
and a side-effecting tool that waits for approval (runs after approve, not after deny). A fake
engine writes the calls; the tools are the test MCP server over stdio."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app
from tests.browser.conftest import Web
from tests.browser.helpers import send, wait_reply_done
from tests.unit.test_tool_servers import SERVER_SCRIPT


def call(name: str, **arguments) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


REPLIES = [
    call("get_weather", city="北京"),
    "北京今天晴。",
    call("send_email", to="a@example.com", body="hi"),
    "Sent.",
    call("send_email", to="b@example.com", body="no"),
    "Not sent.",
]


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(n_ctx=4096, token_delay=0.005, replies=REPLIES, family="qwen2")


@pytest.fixture
def web(engine: FakeEngine, sqlite_store: ConversationStore, tmp_path: Path) -> Iterator[Web]:
    app = create_app(Settings(auto_titles=False, data_dir=tmp_path), engine, store=sqlite_store)
    with serve_app(app) as url:
        args = [SERVER_SCRIPT, "--outbox", str(tmp_path / "outbox.txt")]
        body = {
            "name": "local",
            "kind": "stdio",
            "command": sys.executable,
            "args": args,
            "side_effecting": ["send_email"],
        }
        assert httpx.post(url + "/api/admin/tool-servers", json=body, timeout=30).status_code == 201
        yield Web(url, engine, sqlite_store)


def test_a_call_and_its_result_are_shown_and_approvals_decide(page, web: Web, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.txt"
    switch = page.locator("#tool-switch")
    expect(switch).to_be_visible()
    switch.locator("input[value=local]").check()
    send(page, "北京今天天气怎么样？")
    wait_reply_done(page, timeout=30_000)
    call_view = page.locator(".tool-call").first
    expect(call_view.locator("summary")).to_have_text("Tool call: get_weather · local")
    expect(call_view).not_to_have_attribute("open", "")  # collapsed by default
    result = page.locator(".tool-result").first
    expect(result.locator("summary")).to_contain_text("Tool result: get_weather · local")
    result.locator("summary").click()
    expect(result.locator(".tool-json-result code")).to_contain_text("weather-probe-7731")
    expect(result.locator(".tool-json-arguments code")).to_have_text('{\n  "city": "北京"\n}')
    expect(page.locator("article.msg-assistant").last.locator(".msg-body")).to_have_text("北京今天晴。")

    send(page, "mail a")
    approve = page.locator(".tool-approve")
    expect(approve).to_be_visible(timeout=30_000)
    expect(page.locator(".tool-result[open] .tool-json-arguments code").last).to_contain_text("a@example.com")
    assert not outbox.exists()  # nothing ran before the decision
    approve.click()
    wait_reply_done(page, timeout=30_000)
    expect(page.locator(".tool-result summary").last).to_contain_text("approved")
    assert outbox.read_text() == "a@example.com\thi\n"

    send(page, "mail b")
    deny = page.locator(".tool-deny")
    expect(deny).to_be_visible(timeout=30_000)
    deny.click()
    wait_reply_done(page, timeout=30_000)
    expect(page.locator(".tool-result summary").last).to_contain_text("denied")
    assert outbox.read_text() == "a@example.com\thi\n"  # the denied call never ran
    # a reload shows the stored calls and results again
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(page.locator(".tool-result")).to_have_count(3)
    expect(page.locator("#tool-switch input[value=local]")).to_be_checked()


def test_the_switch_is_stored_in_the_conversation(page, browser, web: Web) -> None:
    """Switched on in one page: on after a reload (the browser's storage cleared) and in another
    browser (Chinese UI); the next message, sent without `tools`, uses the stored choice."""
    cid = httpx.post(web.url + "/api/conversations", json={"title": "tools"}, timeout=30).json()["id"]
    page.goto(f"{web.url}/c/{cid}")
    page.wait_for_selector("html[data-ready=true]")
    box = page.locator("#tool-switch input[value=local]")
    expect(box).not_to_be_checked()
    with page.expect_response(lambda r: r.request.method == "PATCH" and r.url.endswith(cid)) as saved:
        box.check()
    assert saved.value.ok
    detail = httpx.get(f"{web.url}/api/conversations/{cid}", timeout=30).json()
    assert detail["settings"]["tools"] == ["local"]

    other = browser.new_context(locale="zh-CN")  # another device
    try:
        elsewhere = other.new_page()
        elsewhere.goto(f"{web.url}/c/{cid}")
        elsewhere.wait_for_selector("html[data-ready=true]")
        expect(elsewhere.locator("#tool-switch .tool-switch-label")).to_have_text("🛠 工具")
        expect(elsewhere.locator("#tool-switch input[value=local]")).to_be_checked()
    finally:
        other.close()

    page.evaluate("localStorage.clear()")
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(page.locator("#tool-switch .tool-switch-label")).to_have_text("🛠 Tools")
    expect(box).to_be_checked()
    bodies: list[dict] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/messages") and bodies.append(r.post_data_json))
    send(page, "北京今天天气怎么样？")
    wait_reply_done(page, timeout=30_000)
    expect(page.locator(".tool-call summary").first).to_have_text("Tool call: get_weather · local")
    assert len(bodies) == 1 and "tools" not in bodies[0]  # the stored choice applied
    with page.expect_response(lambda r: r.request.method == "PATCH" and r.url.endswith(cid)):
        box.uncheck()
    detail = httpx.get(f"{web.url}/api/conversations/{cid}", timeout=30).json()
    assert "tools" not in detail["settings"]
