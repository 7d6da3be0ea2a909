"""Browser fixtures: Debian's Chromium driven by Playwright, and the web chat served around a fake
engine (uvicorn in a thread, real SQLite store) or a real `mingyan serve`.

Chromium comes from Debian (`apt-get install chromium`), not from `playwright install`; without it
these tests skip, and CI (which installs it) turns a skip into a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from tests.app_server import serve_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests, closed when they are done: Playwright's sync API keeps
    an event loop running in this thread while it is open, which `asyncio.run()` in other tests
    cannot share."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium is not installed (no /usr/bin/chromium): `apt-get install chromium` to run the browser tests"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `pip install -e '.[test]'`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class Web:
    """The web chat served around a fake engine, over a real SQLite store."""

    url: str
    engine: FakeEngine
    store: ConversationStore

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(n_ctx=4096, token_delay=0.01)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ConversationStore]:
    url = default_url(tmp_path)
    upgrade(url)
    database = open_database(url)
    yield ConversationStore(Database(database))
    database.dispose()


@pytest.fixture
def web(engine: FakeEngine, sqlite_store: ConversationStore) -> Iterator[Web]:
    app = create_app(Settings(auto_titles=False), engine, store=sqlite_store)
    with serve_app(app) as url:
        yield Web(url, engine, sqlite_store)


SETUP_TOKEN = "setup-token-for-browser-tests"
PASSWORD = "correct horse battery"


@dataclass
class AccountsWeb(Web):
    """The web chat of a server that can have accounts (first-run setup enabled)."""

    accounts: AccountStore = None  # type: ignore[assignment]

    def user(self, username: str, role: str = "user", password: str = PASSWORD):
        return self.accounts.users.create_user(username, password, role=role)


@pytest.fixture
def accounts_web(engine: FakeEngine, sqlite_store: ConversationStore) -> Iterator[AccountsWeb]:
    app = create_app(Settings(auto_titles=False), engine, store=sqlite_store, setup_token=SETUP_TOKEN)
    with serve_app(app) as url:
        yield AccountsWeb(url, engine, sqlite_store, AccountStore.open(sqlite_store.db))


@dataclass
class PageWatch:
    """What a page did that a test must see: dialogs, console errors, requests to other hosts."""

    allowed_host: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    expected_errors: list[str] = field(default_factory=list)

    def expect_error(self, fragment: str) -> None:
        """A console error holding `fragment` is part of the test (e.g. a 400 the page shows)."""
        self.expected_errors.append(fragment)

    def check(self) -> None:
        errors = [e for e in self.errors if not any(f in e for f in self.expected_errors)]
        assert not self.dialogs, f"the page opened dialogs: {self.dialogs}"
        assert not self.foreign_requests, f"the page requested other hosts: {self.foreign_requests}"
        assert not errors, f"errors in the page: {errors}"


def watch(page, seen: PageWatch) -> PageWatch:
    host = seen.allowed_host

    def on_dialog(dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != host:
            seen.foreign_requests.append(request.url)

    page.on("dialog", on_dialog)
    page.on("request", on_request)
    page.on("pageerror", lambda error: seen.errors.append(f"pageerror: {error}"))
    page.on("console", lambda msg: msg.type == "error" and seen.errors.append(f"console: {msg.text}"))
    return seen


@pytest.fixture
def context(browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 860})
    yield context
    context.close()


@pytest.fixture
def page_watch(web: Web) -> PageWatch:
    return PageWatch(web.host)


@pytest.fixture
def page(context, web: Web, page_watch: PageWatch):
    """A page on the web chat (English UI), failing the test on any dialog, page error, console
    error or request to another host."""
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch(page, page_watch)
    page.goto(web.url + "/")
    page.wait_for_selector("html[data-ready=true]")
    yield page
    page_watch.check()
