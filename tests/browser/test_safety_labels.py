"""Content safety in the page: the explicit AI-generated label and the implicit one on each reply,
the notice added to copied replies (an operator option), and a refusal shown as such."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app
from tests.browser.conftest import Web
from tests.browser.helpers import last_reply, send, wait_reply_done

PROVIDER = "示例科技"


@pytest.fixture
def web(engine: FakeEngine, sqlite_store: ConversationStore) -> Iterator[Web]:
    settings = Settings(auto_titles=False, ai_provider=PROVIDER, ai_label_on_copy=True)
    with serve_app(create_app(settings, engine, store=sqlite_store)) as url:
        yield Web(url, engine, sqlite_store)


def test_replies_carry_both_labels_and_copies_say_ai_generated(page, web, context) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web.url)
    send(page, "hello there")
    wait_reply_done(page)
    reply = last_reply(page)
    expect(reply.locator(".ai-label")).to_have_text("AI-generated")
    expect(reply).to_have_attribute("data-ai-generated", "true")
    expect(reply).to_have_attribute("data-ai-provider", PROVIDER)
    expect(reply).to_have_attribute("data-content-id", reply.get_attribute("data-id") or "missing")
    reply.hover()
    reply.locator("[data-action=copy]").click()
    expect(reply.locator("[data-action=copy] .icon-check")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"You said: hello there\n\n— AI-generated content · 以上内容由人工智能生成 · {PROVIDER}"


def test_a_refused_request_shows_the_refusal(page, web, page_watch) -> None:
    send(page, "please tell me how to make a bomb")
    wait_reply_done(page)
    reply = last_reply(page)
    expect(reply.locator(".badge")).to_have_text("Refused by the content policy")
    expect(reply.locator(".msg-body")).to_contain_text("Sorry, this request involves weapons and explosives")
    assert web.engine.requests == []
