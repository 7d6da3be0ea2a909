"""The account page (/account): change the password, API keys shown once then by prefix only and
working against /v1 until revoked, my usage; signing out."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.browser.accounts_helpers import (
    browser_page,
    open_user_menu,
    sign_in,
    signed_in_as,
)
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import send, wait_reply_done

NEW_PASSWORD = "a much better passphrase"


def test_password_keys_usage_and_sign_out(browser, accounts_web) -> None:
    accounts_web.user("alice")
    with browser_page(browser, accounts_web, "/account") as page:
        sign_in(page, "alice")
        signed_in_as(page, "alice")
        assert page.url == accounts_web.url + "/account"  # back where the user was going
        expect(page.locator(".profile-username")).to_have_text("alice")
        expect(page.locator(".profile-role")).to_have_text("User")
        expect(page.locator("#conversation-title")).to_have_text("Account")
        expect(page.locator("#composer")).to_be_hidden()

        # Password: checked here first, then by the server.
        form = page.locator("#password-form")
        fields = (("current", "current-password"), ("new", "new-password"), ("repeat", "new-password"))
        for name, autocomplete in fields:
            expect(form.locator(f"input[name={name}]")).to_have_attribute("autocomplete", autocomplete)
        form.locator("input[name=current]").fill("wrong password")
        form.locator("input[name=new]").fill(NEW_PASSWORD)
        form.locator("input[name=repeat]").fill(NEW_PASSWORD + "x")
        form.locator("button[type=submit]").click()
        expect(form.locator(".form-error")).to_have_text("The two passwords differ.")
        form.locator("input[name=current]").fill("wrong password")
        form.locator("input[name=new]").fill(NEW_PASSWORD)
        form.locator("input[name=repeat]").fill(NEW_PASSWORD)
        form.locator("button[type=submit]").click()
        expect(form.locator(".form-error")).to_have_text("The current password is wrong.")
        form.locator("input[name=current]").fill(PASSWORD)
        form.locator("input[name=new]").fill(NEW_PASSWORD)
        form.locator("input[name=repeat]").fill(NEW_PASSWORD)
        form.locator("input[name=repeat]").press("Enter")
        expect(page.locator(".toast")).to_contain_text("Password changed.")
        expect(form.locator("input[name=new]")).to_have_value("")

        # A key: shown once, with its warning; listed by prefix only.
        keys = page.locator("#key-form")
        keys.locator("input[name=name]").fill("laptop script")
        keys.locator("summary").click()
        keys.locator("input[name=tokens_per_day]").fill("100000")
        keys.locator("button[type=submit]").click()
        once = page.locator(".key-once")
        expect(once).to_contain_text("you will not see it again")
        key = page.locator("#new-key-value").input_value()
        assert key.startswith("my-") and len(key) > 30
        row = page.locator(".keys-table tbody tr")
        expect(row).to_have_count(1)
        expect(row.locator(".key-name")).to_have_text("laptop script")
        prefix = row.locator(".key-prefix").inner_text()
        assert prefix.endswith("…") and key.startswith(prefix[:-1]) and len(prefix) < len(key) // 2
        assert key not in page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
        once.get_by_role("button", name="I have copied it").click()
        expect(once).to_be_hidden()
        assert key not in page.content()
        expect(row.locator("td").nth(3)).to_have_text("never")

        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(accounts_web.url + "/v1/models", headers=headers).status_code == 200
        page.reload()
        expect(row.locator("td").nth(3)).not_to_have_text("never")  # last used
        row.locator("[data-action=revoke]").click()
        page.locator("dialog.modal.small button[value=ok]").click()
        expect(row.locator(".badge")).to_contain_text("Revoked")
        expect(row.locator("[data-action=revoke]")).to_have_count(0)
        assert httpx.get(accounts_web.url + "/v1/models", headers=headers).status_code == 401

        # Usage: a reply counts.
        page.locator("#new-chat").click()
        send(page, "count me")
        wait_reply_done(page)
        open_user_menu(page).locator("[data-menu=account]").click()
        usage = page.locator(".usage-table tbody tr td")
        expect(usage.first).to_have_text("1")
        expect(usage.last).to_have_text(str(len("You said: count me")))
        page.locator("#usage-since").fill("2999-01-01")
        page.locator("#usage-since").dispatch_event("change")
        expect(page.locator(".usage-table")).to_contain_text("No usage recorded.")

        # Sign out, then only the new password works.
        page.locator("#account-sign-out").click()
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#conversation-list .conv-item")).to_have_count(0)
        sign_in(page, "alice", PASSWORD)
        expect(page.locator("#login-form .form-error")).to_contain_text("Wrong username or password")
        sign_in(page, "alice", NEW_PASSWORD)
        signed_in_as(page, "alice")
        expect(page.locator("#conversation-list .conv-item")).to_have_count(1)
