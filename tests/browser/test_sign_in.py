"""Signing in from the web chat: the first-run setup from the link `serve` prints (the conversations
of local mode become the administrator's), the login view (wrong password, throttling), and a
sign-in that ends under the user (back to login, the composer's text kept)."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.browser.accounts_helpers import browser_page, sign_in, signed_in_as
from tests.browser.conftest import PASSWORD, SETUP_TOKEN
from tests.browser.helpers import api, last_reply, send, wait_reply_done


def test_first_run_setup_from_the_printed_link(browser, accounts_web) -> None:
    url = accounts_web.url
    with api(url) as client:  # local mode: no accounts, no credentials
        assert client.post("/conversations", json={"title": "before accounts"}).status_code == 201
    with browser_page(browser, accounts_web, "/") as page:
        expect(page.locator("#conversation-list .conv-item")).to_have_text(["before accounts"])
        expect(page.locator("#user-button")).to_be_hidden()
        expect(page.locator("#setup-link")).to_be_hidden()  # only for a tab opened with the link
        page.goto(url + "/admin")  # no accounts: nothing to administer, and no user made around the setup
        expect(page.locator("#page")).to_contain_text("local single-user mode")
        expect(page.locator(".users-table")).to_have_count(0)

        page.goto(url + "/setup?token=wrong-token")
        expect(page.locator("#auth-title")).to_have_text("Create the administrator account")
        assert page.url == url + "/setup"  # the token left the address bar
        expect(page.locator("#setup-form")).to_contain_text("conversations made on this server so far")
        expect(page.locator("#setup-token")).to_be_hidden()
        page.locator("#setup-username").fill("root")
        page.locator("#setup-password").fill(PASSWORD)
        page.locator("#setup-repeat").fill(PASSWORD + "!")
        page.locator("#setup-submit").click()
        expect(page.locator("#setup-form .form-error")).to_have_text("The two passwords differ.")
        page.locator("#setup-password").fill("short")
        page.locator("#setup-repeat").fill("short")
        page.locator("#setup-submit").click()
        expect(page.locator("#setup-form .form-error")).to_have_text("The password needs at least 8 characters.")
        page.locator("#setup-password").fill(PASSWORD)
        page.locator("#setup-repeat").fill(PASSWORD)
        page.locator("#setup-submit").click()
        expect(page.locator("#setup-form .form-error")).to_contain_text("This setup token is not valid")
        expect(page.locator("#setup-token")).to_be_visible()  # the right one can be pasted
        assert page.locator("#setup-password").input_value() == ""

        # The right link; "not now" leaves a discreet way back in the sidebar.
        page.goto(url + f"/setup?token={SETUP_TOKEN}")
        page.get_by_text("Not now: keep using it without accounts").click()
        expect(page.locator("#composer-input")).to_be_visible()
        page.locator("#setup-link").click()
        page.locator("#setup-username").fill("root")
        page.locator("#setup-password").fill(PASSWORD)
        page.locator("#setup-repeat").fill(PASSWORD)
        page.locator("#setup-repeat").press("Enter")
        signed_in_as(page, "root")
        expect(page.locator(".toast")).to_contain_text("The conversations made so far are now yours.")
        expect(page.locator("#conversation-list .conv-item")).to_have_text(["before accounts"])
        expect(page.locator("#setup-link")).to_be_hidden()
        stored = page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
        assert stored.find(PASSWORD) < 0
    with api(url) as client:
        assert client.get("/auth/status").json() == {"accounts": True, "setup_required": False}
        assert client.get("/conversations").status_code == 401


def test_login_and_a_lost_session_keep_the_composer_text(browser, accounts_web) -> None:
    alice = accounts_web.user("alice")
    with browser_page(browser, accounts_web, "/") as page:
        expect(page.locator("#login-form")).to_be_visible()
        assert page.url == accounts_web.url + "/login"
        expect(page.locator("#login-password")).to_have_attribute("autocomplete", "current-password")
        sign_in(page, "alice", "not the password")
        expect(page.locator("#login-form .form-error")).to_have_text(
            "Wrong username or password, or the account is disabled."
        )
        expect(page.locator("#login-password")).to_have_value("")
        sign_in(page, "alice")
        signed_in_as(page, "alice")
        assert page.url == accounts_web.url + "/"
        send(page, "first message")
        wait_reply_done(page)
        conversation = page.url

        # The session ends server-side (expired, signed out elsewhere): the next send goes to login.
        accounts_web.accounts.users.delete_sessions(alice.id)
        text = "a long thought I do not want to lose\nsecond line"
        send(page, text)
        expect(page.locator("#login-notice")).to_contain_text("You were signed out")
        assert re.search(r"/login\?next=%2Fc%2F\w+$", page.url), page.url
        sign_in(page, "alice")
        signed_in_as(page, "alice")
        assert page.url == conversation
        expect(page.locator("#composer-input")).to_have_value(text)
        expect(page.locator("article.msg-user .msg-body")).to_have_text(["first message"])
        page.locator("#composer-input").press("Enter")
        wait_reply_done(page)
        expect(last_reply(page).locator(".msg-body")).to_have_text("You said: " + text)
        stored = page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
        assert PASSWORD not in stored and "lose" not in stored  # the draft went once given back


def test_too_many_failed_sign_ins_say_how_long_to_wait(browser, accounts_web) -> None:
    accounts_web.user("bob")
    for _ in range(10):
        r = httpx.post(accounts_web.url + "/api/auth/login", json={"username": "bob", "password": "guess guess"})
        assert r.status_code == 401
    with browser_page(browser, accounts_web, "/login") as page:
        sign_in(page, "bob")
        expect(page.locator("#login-form .form-error")).to_have_text(
            re.compile(r"^Too many failed sign-ins\. Try again in 1[45] min\.$")
        )
        expect(page.locator("#login-submit")).to_be_enabled()
