"""`serve --api-docs`: Swagger UI renders from the vendored files under the strict CSP, with no
request to another host and no CSP violation or script error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app
from tests.browser.conftest import PageWatch, Web, watch


@pytest.fixture
def docs_web(engine: FakeEngine, sqlite_store: ConversationStore) -> Iterator[Web]:
    app = create_app(Settings(auto_titles=False, api_docs=True), engine, store=sqlite_store)
    with serve_app(app) as url:
        yield Web(url, engine, sqlite_store)


def test_swagger_ui_renders_under_the_csp(context, docs_web: Web) -> None:
    page = context.new_page()
    page.set_default_timeout(15_000)
    seen = watch(page, PageWatch(docs_web.host))
    page.goto(docs_web.url + "/docs")
    expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions").first).to_be_visible()
    expect(page.locator(".info .title")).to_contain_text("mingyan")
    seen.check()  # no CSP violation (a console error), page error or foreign request
