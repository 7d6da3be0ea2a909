"""The report flow in Chromium: a user reports a reply from the page, an administrator takes it
from the queue, answers, hides the content and resolves it, and the user sees the outcome."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.accounts_helpers import browser_page, sign_in, signed_in_as
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import last_reply, send, wait_reply_done


def test_report_review_resolve_and_the_reporter_sees_it(browser, accounts_web) -> None:
    accounts_web.user("root", role="admin")
    accounts_web.user("alice")
    with browser_page(browser, accounts_web, "/") as page, browser_page(browser, accounts_web, "/") as admin:
        sign_in(page, "alice")
        signed_in_as(page, "alice")
        send(page, "tell me something")
        wait_reply_done(page)
        reply = last_reply(page)
        reply.hover()
        reply.locator("[data-action=report]").click()
        page.locator("#report-reason").select_option("false")
        page.locator("#report-details").fill("这不是真的")
        page.locator("dialog.modal.small button[value=ok]").click()
        expect(page.locator("dialog.modal.small")).to_have_count(0)

        sign_in(admin, "root")
        signed_in_as(admin, "root")
        admin.goto(accounts_web.url + "/admin")
        admin.locator("[data-tab=reports]").click()
        row = admin.locator(".reports-table tr[data-status=open]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("assistant: You said: tell me something")
        expect(row).to_contain_text("False information")
        row.locator("[data-action=review]").click()
        admin.locator("#report-status").select_option("in_review")
        row = admin.locator(".reports-table tr[data-status=in_review]")
        expect(row).to_have_count(1)
        row.locator("[data-action=resolve]").click()
        admin.locator("#report-answer").fill("Checked: the reply was hidden.")
        admin.locator("#report-hide").check()
        admin.locator("dialog.modal.small button[value=ok]").click()
        admin.locator("#report-status").select_option("resolved")
        resolved = admin.locator(".reports-table tr[data-status=resolved]")
        expect(resolved).to_contain_text("Checked: the reply was hidden.")

        page.goto(accounts_web.url + "/account")
        mine = page.locator("#my-reports")
        expect(mine).to_contain_text("Resolved")
        expect(mine).to_contain_text("Checked: the reply was hidden.")


def test_a_user_deletes_their_account_from_the_account_page(browser, accounts_web) -> None:
    accounts_web.user("root", role="admin")
    alice = accounts_web.user("alice")
    with browser_page(browser, accounts_web, "/") as page:
        sign_in(page, "alice")
        signed_in_as(page, "alice")
        send(page, "remember me")
        wait_reply_done(page)
        page.goto(accounts_web.url + "/account")
        page.locator("#delete-account-password").fill("not my password")
        page.locator("#delete-account").click()
        expect(page.locator("#delete-account-form .form-error")).to_contain_text("password is wrong")
        page.locator("#delete-account-password").fill(PASSWORD)
        page.locator("#delete-account").click()
        expect(page.locator("#login-form")).to_be_visible()
    assert accounts_web.store.list_conversations(alice.id) == []
    assert [u.username for u in accounts_web.accounts.users.list_users()] == ["root"]


def test_an_admin_edits_a_keyword_bank_in_the_page(browser, accounts_web) -> None:
    accounts_web.user("root", role="admin")
    with browser_page(browser, accounts_web, "/") as page:
        sign_in(page, "root")
        signed_in_as(page, "root")
        page.goto(accounts_web.url + "/admin")
        page.locator("[data-tab=banks]").click()
        form = page.locator("form.bank-form[data-category=fraud]")
        expect(form.locator(".bank-version")).to_have_text("Version 1 · shipped")
        box = form.locator("textarea")
        box.fill(box.input_value() + "\n刷单返利")
        form.locator("button[type=submit]").click()
        expect(form.locator(".bank-version")).to_have_text("Version 1.1 · edited")
        page.goto(accounts_web.url + "/")
        send(page, "我们招聘刷单返利的兼职")
        wait_reply_done(page)
        expect(last_reply(page).locator(".badge")).to_have_text("Refused by the content policy")
