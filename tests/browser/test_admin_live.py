"""The administration page's live replies in Chromium (the administrator's page in Chinese): a
user's reply being generated shows in the list, without its text; Stop ends it, and the user's own
page shows the text so far marked "Stopped by an administrator"."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.accounts_helpers import browser_page, sign_in, signed_in_as
from tests.browser.helpers import last_reply, send, wait_reply_done

ASKED = "tell me a long story about the moon and the sea, " * 4


def test_an_admin_stops_a_users_live_reply_from_the_page(browser, accounts_web) -> None:
    accounts_web.user("root", role="admin")
    accounts_web.user("alice")
    accounts_web.engine.token_delay = 0.1  # a reply that runs long enough to be stopped
    with (
        browser_page(browser, accounts_web, "/") as page,
        browser_page(browser, accounts_web, "/", locale="zh-CN") as admin,
    ):
        sign_in(page, "alice")
        signed_in_as(page, "alice")
        send(page, ASKED)
        expect(last_reply(page)).to_contain_text("You said")  # generating

        sign_in(admin, "root")
        signed_in_as(admin, "root")
        admin.goto(accounts_web.url + "/admin")
        admin.locator("[data-tab=live]").click()
        expect(admin.locator("[data-tab=live]")).to_have_text("正在生成的回答")
        row = admin.locator(".live-table tr[data-user=alice]")
        expect(row).to_have_count(1)
        expect(row.locator(".live-model")).to_have_text("fake-model")
        expect(admin.locator("#admin-live")).not_to_contain_text("moon")  # no text of the reply
        expect(row.locator("[data-action=stop-live]")).to_have_text("停止")
        row.locator("[data-action=stop-live]").click()
        expect(admin.locator(".live-empty")).to_have_text("当前没有正在生成的回答。")

        wait_reply_done(page)
        reply = last_reply(page)
        expect(reply.locator(".badge")).to_have_text("Stopped by an administrator")
        shown = reply.locator(".msg-body").inner_text().strip()
        assert shown.startswith("You said") and len(shown) < len("You said: " + ASKED)  # the text so far
