"""The web chat served by a real `mingyan serve` on the real tiny model (SmolLM2-135M)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PageWatch, watch
from tests.conftest import SMOLLM, start_server, stop_server


@pytest.fixture
def real_server(tmp_path):
    server = start_server(tmp_path, SMOLLM, "--n-ctx", "2048")
    yield server
    stop_server(server)


@pytest.mark.timeout(600)
def test_a_chinese_message_gets_a_streamed_reply_with_details(browser, real_server) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    seen = watch(page, PageWatch(real_server.url.removeprefix("http://")))
    page.goto(real_server.url + "/")
    expect(page.locator("#model-name")).to_have_text(SMOLLM)
    # A short reply keeps the test quick on a busy 2-core machine: the new chat's settings.
    page.locator("#open-settings").click()
    page.locator("#set-max-tokens").fill("40")
    page.locator("#settings-save").click()
    page.locator("#composer-input").fill("你好！请用一句话介绍一下北京。")
    page.locator("#composer-input").press("Enter")
    reply = page.locator("article.msg-assistant")
    expect(reply).to_have_class(re.compile(r"\bstreaming\b"))
    page.wait_for_function(
        "() => { const m = document.querySelector('article.msg-assistant');"
        " return m && !m.classList.contains('streaming'); }",
        timeout=240_000,
    )
    assert reply.locator(".msg-body").inner_text().strip()
    expect(reply.locator(".ai-label")).to_have_text("AI 生成")
    expect(reply.locator(".msg-status")).to_be_hidden()  # complete
    reply.hover()
    reply.locator("[data-action=details]").click()
    details = reply.locator(".msg-details")
    expect(details.locator("[data-detail=detailModel]")).to_have_text(SMOLLM)
    assert int(details.locator("[data-detail=detailCompletionTokens]").inner_text()) > 0
    assert int(details.locator("[data-detail=detailPromptTokens]").inner_text()) > 0
    expect(details.locator("[data-detail=detailSpeed]")).to_have_text(re.compile(r"^\d+\.\d tok/s$"))
    expect(details.locator("[data-detail=detailFinish]")).to_have_text(re.compile(r"^(stop|length)$"))
    assert int(details.locator("[data-detail=detailCompletionTokens]").inner_text()) <= 40
    page.reload()  # stored on the server
    expect(page.locator("article.msg-user .msg-body")).to_have_text("你好！请用一句话介绍一下北京。")
    context.close()
    seen.check()
