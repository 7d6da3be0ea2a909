"""The web chat in a real Chromium against the app around a fake engine: streaming, stop,
regenerate and branches, edits, reload mid-reply, search, language, IME."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.helpers import (
    conversation_file,
    import_conversation,
    last_reply,
    send,
    wait_reply_done,
)


def test_send_streams_a_reply_then_done(page, web) -> None:
    web.engine.token_delay = 0.03
    send(page, "Hello there, tell me a story about a small cat")
    reply = last_reply(page)
    expect(reply).to_have_class(re.compile(r"\bstreaming\b"))
    lengths = []
    for _ in range(6):
        lengths.append(len(reply.locator(".msg-body").inner_text()))
        page.wait_for_timeout(120)
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0], f"text did not grow: {lengths}"
    wait_reply_done(page)
    expect(reply.locator(".msg-body")).to_have_text("You said: Hello there, tell me a story about a small cat")
    expect(page.locator("article.msg-user .msg-body")).to_have_text("Hello there, tell me a story about a small cat")
    expect(reply.locator(".ai-label")).to_have_text("AI-generated")
    assert page.url.startswith(web.url + "/c/")
    expect(page.locator("#conversation-list .conv-item")).to_have_count(1)


def test_stop_keeps_the_text_so_far(page, web) -> None:
    web.engine.token_delay = 0.05
    send(page, "Please write a very long answer about the history of the Great Wall of China, in detail.")
    reply = last_reply(page)
    expect(reply.locator(".msg-body")).to_contain_text("You said")
    expect(page.locator("#send-button")).to_have_text("Stop")
    page.locator("#send-button").click()
    expect(reply.locator(".badge-stopped")).to_have_text("Stopped")
    expect(page.locator("#send-button")).to_have_text("Send")
    text = reply.locator(".msg-body").inner_text()
    assert text.startswith("You said") and len(text) < len("You said: Please write a very long answer about")


def test_regenerate_shows_versions_and_switches_back(page, web) -> None:
    send(page, "first question")
    wait_reply_done(page)
    first_id = last_reply(page).get_attribute("data-id")
    last_reply(page).hover()
    last_reply(page).locator("[data-action=regenerate]").click()
    wait_reply_done(page)
    reply = last_reply(page)
    second_id = reply.get_attribute("data-id")
    assert second_id != first_id
    expect(reply.locator(".branch-count")).to_have_text("2 / 2")
    reply.locator("[data-action=prev]").click()
    expect(last_reply(page)).to_have_attribute("data-id", first_id)
    expect(last_reply(page).locator(".branch-count")).to_have_text("1 / 2")
    expect(last_reply(page).locator(".msg-body")).to_have_text("You said: first question")
    # The branch is the server's current one: a reload shows it again.
    page.reload()
    expect(last_reply(page)).to_have_attribute("data-id", first_id)
    last_reply(page).locator("[data-action=next]").click()
    expect(last_reply(page)).to_have_attribute("data-id", second_id)


def test_edit_a_user_message_makes_a_branch(page, web) -> None:
    send(page, "alpha")
    wait_reply_done(page)
    send(page, "second turn")
    wait_reply_done(page)
    first_user = page.locator("article.msg-user").first
    first_user.hover()
    first_user.locator("[data-action=edit]").click()
    first_user.locator("textarea.edit-area").fill("beta")
    first_user.locator(".edit-save").click()
    wait_reply_done(page)
    expect(page.locator("article.msg")).to_have_count(2)  # the new branch: beta and its reply
    expect(page.locator("article.msg-user .msg-body")).to_have_text(["beta"])
    expect(last_reply(page).locator(".msg-body")).to_have_text("You said: beta")
    user = page.locator("article.msg-user").first
    expect(user.locator(".branch-count")).to_have_text("2 / 2")
    user.locator("[data-action=prev]").click()
    expect(page.locator("article.msg")).to_have_count(4)  # back on the old branch, both turns
    expect(page.locator("article.msg-user .msg-body").first).to_have_text("alpha")
    expect(page.locator("article.msg-user .msg-body").last).to_have_text("second turn")
    page.locator("article.msg-user").first.locator("[data-action=next]").click()
    expect(page.locator("article.msg-user .msg-body")).to_have_text(["beta"])


def test_reload_mid_reply_attaches_and_shows_the_rest(page, web) -> None:
    web.engine.token_delay = 0.04
    question = "Tell me everything about the Summer Palace in Beijing and its lakes and gardens, please."
    send(page, question)
    expect(last_reply(page).locator(".msg-body")).to_contain_text("You said: Tell")
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    reply = last_reply(page)
    expect(reply).to_have_class(re.compile(r"\bstreaming\b"))  # re-attached while it still runs
    before = len(reply.locator(".msg-body").inner_text())
    wait_reply_done(page, timeout=30_000)
    expect(reply.locator(".msg-body")).to_have_text(f"You said: {question}")
    assert len(reply.locator(".msg-body").inner_text()) > before
    expect(reply.locator(".msg-status")).to_be_hidden()  # complete: no badge


def test_search_in_chinese_and_english_opens_the_hit(page, web) -> None:
    import_conversation(web.url, conversation_file("旅行计划", [("上海有什么好吃的？", "小笼包和生煎。")]))
    send(page, "北京的天气怎么样")
    wait_reply_done(page)
    page.goto(web.url + "/")
    page.locator("#search").fill("北京")
    hits = page.locator("#search-results .search-hit")
    expect(hits.first).to_be_visible()
    expect(hits.first.locator("mark").first).to_have_text("北京")
    expect(page.locator("#search-results")).not_to_contain_text("上海")
    hits.first.click()
    expect(page.locator("article.msg-user .msg-body").first).to_have_text("北京的天气怎么样")
    assert "/c/" in page.url
    page.locator("#search").fill("xiaolongbao nowhere")
    expect(page.locator("#search-results")).to_contain_text("Nothing found")
    page.locator("#search").fill("小笼包")
    expect(page.locator("#search-results .search-hit")).to_have_count(1)
    page.locator("#search").fill("")
    expect(page.locator("#conversation-list")).to_be_visible()


def test_language_switch_changes_strings_and_is_remembered(page, web) -> None:
    expect(page.locator("#new-chat")).to_have_text("New chat")
    page.locator("#toggle-language").click()
    expect(page.locator("#new-chat")).to_have_text("新对话")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert page.locator("#search").get_attribute("placeholder") == "搜索对话"
    send(page, "你好")
    wait_reply_done(page)
    expect(last_reply(page).locator(".ai-label")).to_have_text("AI 生成")
    page.reload()
    expect(page.locator("#new-chat")).to_have_text("新对话")
    page.locator("#toggle-language").click()
    expect(last_reply(page).locator(".ai-label")).to_have_text("AI-generated")


def test_a_chinese_browser_gets_the_chinese_ui(browser, web) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(web.url + "/")
    expect(page.locator("#new-chat")).to_have_text("新对话")
    expect(page.locator("#send-button")).to_have_text("发送")
    context.close()


def _sent_count(page) -> int:
    return page.locator("article.msg").count()


def test_enter_during_ime_composition_never_sends(page, web) -> None:
    box = page.locator("#composer-input")
    box.click()
    box.fill("beijing")
    # Enter that confirms a pinyin candidate: isComposing while a composition is open.
    page.evaluate(
        """() => {
        const box = document.querySelector('#composer-input');
        box.dispatchEvent(new CompositionEvent('compositionstart', {bubbles: true, data: ''}));
        box.dispatchEvent(new KeyboardEvent('keydown',
            {key: 'Enter', code: 'Enter', isComposing: true, bubbles: true, cancelable: true}));
        box.value = '北京';
        box.dispatchEvent(new CompositionEvent('compositionend', {bubbles: true, data: '北京'}));
        // Safari order: compositionend first, then a keydown with keyCode 229.
        box.dispatchEvent(new KeyboardEvent('keydown',
            {key: 'Enter', code: 'Enter', keyCode: 229, bubbles: true, cancelable: true}));
    }"""
    )
    # An open composition (compositionstart seen, no compositionend yet) also blocks Enter.
    page.evaluate(
        """() => {
        const box = document.querySelector('#composer-input');
        box.dispatchEvent(new CompositionEvent('compositionstart', {bubbles: true, data: ''}));
        box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', bubbles: true, cancelable: true}));
        box.dispatchEvent(new CompositionEvent('compositionend', {bubbles: true, data: ''}));
    }"""
    )
    page.wait_for_timeout(300)
    assert _sent_count(page) == 0
    expect(box).to_have_value("北京")
    assert len(web.engine.requests) == 0
    box.press("Shift+Enter")
    box.type("天气")
    assert _sent_count(page) == 0
    expect(box).to_have_value("北京\n天气")
    box.press("Enter")  # a plain Enter sends
    wait_reply_done(page)
    expect(page.locator("article.msg-user .msg-body")).to_have_text("北京\n天气")


def test_both_languages_have_every_string(page) -> None:
    keys = page.evaluate(
        """async () => {
        const { strings } = await import('/static/js/i18n.js');
        return Object.fromEntries(Object.entries(strings).map(([lang, table]) => [lang, Object.keys(table).sort()]));
    }"""
    )
    assert keys["en"] == keys["zh-CN"]
    used = page.evaluate(
        """() => [...document.querySelectorAll(
                '[data-i18n], [data-i18n-placeholder], [data-i18n-title], [data-i18n-aria]')]
            .flatMap((el) => [el.dataset.i18n, el.dataset.i18nPlaceholder, el.dataset.i18nTitle, el.dataset.i18nAria])
            .filter(Boolean)"""
    )
    assert set(used) <= set(keys["en"])
