"""The model picker with several models served: each conversation keeps its own model, the next
replies follow a switch, and a new chat starts on the model picked for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.serving.router import ModelRouter, ModelSource
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app
from tests.browser.conftest import Web
from tests.browser.helpers import api, last_reply, send, wait_reply_done


@pytest.fixture
def engines() -> dict[str, FakeEngine]:
    return {name: FakeEngine(name=name, n_ctx=4096, token_delay=0.01) for name in ("small", "big")}


@pytest.fixture
def web(engines: dict[str, FakeEngine], sqlite_store: ConversationStore) -> Iterator[Web]:
    router = ModelRouter([ModelSource(name, lambda e=engine: e) for name, engine in engines.items()])
    router.start()
    with serve_app(create_app(Settings(auto_titles=False), router, store=sqlite_store)) as url:
        yield Web(url, engines["small"], sqlite_store)
    router.close()


def pick(page, opener: str, model: str) -> None:
    page.locator(opener).click()
    dialog = page.locator("#settings-dialog")
    expect(dialog.locator("#set-model option")).to_have_text(["small", "big"])
    expect(dialog.locator("#set-model")).to_be_enabled()
    dialog.locator("#set-model").select_option(model)
    dialog.locator("#settings-save").click()
    expect(dialog).to_be_hidden()


def test_each_conversation_keeps_its_model_and_switches(page, web, engines) -> None:
    pick(page, "#open-settings", "big")  # the new chat's model
    send(page, "first chat")
    wait_reply_done(page)
    expect(last_reply(page).locator(".msg-model")).to_have_text("big")
    first = page.url.rsplit("/", 1)[1]

    page.locator("#new-chat").click()
    pick(page, "#open-settings", "small")
    send(page, "second chat")
    wait_reply_done(page)
    expect(last_reply(page).locator(".msg-model")).to_have_text("small")
    second = page.url.rsplit("/", 1)[1]
    assert [len(engines[n].requests) for n in ("small", "big")] == [1, 1]

    page.goto(f"{web.url}/c/{first}")
    page.wait_for_selector("article.msg-assistant")
    page.locator("#conversation-settings").click()
    expect(page.locator("#set-model")).to_have_value("big")  # the picker shows this chat's model
    page.locator("#settings-dialog button[value=cancel]").first.click()
    pick(page, "#conversation-settings", "small")
    send(page, "now the small one")
    wait_reply_done(page)
    expect(last_reply(page).locator(".msg-model")).to_have_text("small")
    assert [len(engines[n].requests) for n in ("small", "big")] == [2, 1]
    with api(web.url) as client:
        assert client.get(f"/conversations/{first}").json()["model"] == "small"
        assert client.get(f"/conversations/{second}").json()["model"] == "small"
