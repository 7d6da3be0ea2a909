"""Settings: the model, a conversation's system prompt and sampling settings (saved on the
server), personas for new chats (kept in the browser), theme, and the phone-sized layout."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.helpers import api, send, wait_reply_done


def test_conversation_settings_are_saved_on_the_server(page, web) -> None:
    send(page, "hello")
    wait_reply_done(page)
    cid = page.url.rsplit("/", 1)[1]
    page.locator("#conversation-settings").click()
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#set-model option")).to_have_text(["fake-model"])
    expect(dialog.locator("#settings-scope")).to_have_text("These settings apply to this chat.")
    dialog.locator("#set-system").fill("你是一个简洁的助手。")
    dialog.locator("#set-temperature").fill("0.3")
    dialog.locator("#set-top-p").fill("0.9")
    dialog.locator("#set-max-tokens").fill("200")
    dialog.locator("#set-seed").fill("42")
    dialog.locator("#settings-save").click()
    expect(dialog).to_be_hidden()
    with api(web.url) as client:
        conversation = client.get(f"/conversations/{cid}").json()
    assert conversation["system_prompt"] == "你是一个简洁的助手。"
    assert conversation["settings"] == {"temperature": 0.3, "top_p": 0.9, "max_tokens": 200, "seed": 42}
    # The next reply uses them.
    send(page, "again")
    wait_reply_done(page)
    request = web.engine.requests[-1]
    assert (request.sampling.temperature, request.sampling.seed, request.sampling.max_tokens) == (0.3, 42, 200)
    # Cleared fields go back to the defaults; a value the server refuses is shown, not saved.
    page.reload()
    page.locator("#conversation-settings").click()
    expect(dialog.locator("#set-temperature")).to_have_value("0.3")
    dialog.locator("#set-temperature").fill("")
    dialog.locator("#set-seed").fill("")
    dialog.locator("#set-max-tokens").fill("0")
    dialog.locator("#settings-save").click()
    expect(dialog.locator("#settings-error")).to_contain_text("max_tokens")
    dialog.locator("#set-max-tokens").fill("")
    dialog.locator("#settings-save").click()
    expect(dialog).to_be_hidden()
    with api(web.url) as client:
        assert client.get(f"/conversations/{cid}").json()["settings"] == {"top_p": 0.9}


def test_a_persona_starts_a_new_chat_with_its_system_prompt(page, web) -> None:
    page.locator("#open-settings").click()
    dialog = page.locator("#settings-dialog")
    dialog.locator("#persona-name").fill("翻译官")
    dialog.locator("#persona-prompt").fill("把用户的话翻译成英文。")
    dialog.locator("#persona-add").click()
    expect(dialog.locator("#persona-list .persona-name")).to_have_text(["翻译官"])
    dialog.locator("button[value=cancel]").first.click()
    page.locator("#persona-select").select_option(label="翻译官")
    send(page, "今天天气很好")
    wait_reply_done(page)
    cid = page.url.rsplit("/", 1)[1]
    with api(web.url) as client:
        assert client.get(f"/conversations/{cid}").json()["system_prompt"] == "把用户的话翻译成英文。"
    assert "把用户的话翻译成英文。" in web.engine.detokenize(web.engine.requests[-1].prompt_tokens)
    page.reload()  # personas are kept in this browser
    page.locator("#new-chat").click()
    expect(page.locator("#persona-select option")).to_have_text(["Default assistant", "翻译官"])


def test_theme_follows_the_system_and_switches(browser, web) -> None:
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto(web.url + "/")
    page.wait_for_selector("html[data-ready=true]")
    background = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(background) == "rgb(23, 25, 28)"
    page.locator("#toggle-theme").click()
    assert page.evaluate(background) == "rgb(255, 255, 255)"
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    assert page.evaluate(background) == "rgb(255, 255, 255)"  # remembered
    context.close()


def test_phone_sized_screen_collapses_the_sidebar(browser, web) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(web.url + "/")
    page.wait_for_selector("html[data-ready=true]")
    sidebar = page.locator("#sidebar")
    assert sidebar.bounding_box()["x"] + sidebar.bounding_box()["width"] <= 0  # off screen
    page.locator("#composer-input").fill("hi from a phone")
    page.locator("#send-button").tap()
    wait_reply_done(page)
    page.locator("#open-sidebar").tap()
    expect(page.locator("#conversation-list .conv-item")).to_have_count(1)
    page.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().x >= 0")
    page.locator("#new-chat").tap()
    page.wait_for_function("() => document.querySelector('#sidebar').getBoundingClientRect().right <= 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    context.close()
