"""Helpers of the account views' browser tests: pages in their own browser context (cookies are per
context, so each one is a different browser), signing in through the login view."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, PageWatch, watch


@contextmanager
def browser_page(browser, web, path: str = "/", *, locale: str = "en-US", viewport=None, **options) -> Iterator:
    """A page of a fresh browser context at `path`; fails on dialogs, page errors and foreign requests.
    Console errors of refused requests (401/403/409...) are expected in these tests."""
    context = browser.new_context(locale=locale, viewport=viewport or {"width": 1280, "height": 860}, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    seen = watch(page, PageWatch(web.host))
    seen.expect_error("Failed to load resource")
    page.goto(web.url + path)
    page.wait_for_selector("html[data-ready=true]")
    try:
        yield page
        seen.check()
    finally:
        context.close()


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    """Fill the login view (already shown) and press Enter."""
    expect(page.locator("#login-form")).to_be_visible()
    page.locator("#login-username").fill(username)
    page.locator("#login-password").fill(password)
    page.locator("#login-password").press("Enter")


def signed_in_as(page, username: str) -> None:
    expect(page.locator("#user-button")).to_contain_text(username)
    expect(page.locator("#auth")).to_be_hidden()


def open_user_menu(page):
    page.locator("#user-button").click()
    return page.locator(".user-menu")
