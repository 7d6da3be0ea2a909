"""/docs is off unless the operator asks (`--api-docs`), and then served from vendored files under the
web chat's CSP; every answer carries `X-Content-Type-Options: nosniff`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from mingyan.api.app import create_app
from mingyan.api.web import CONTENT_SECURITY_POLICY
from mingyan.cli.flags import settings_from_args
from mingyan.cli.main import build_parser
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from tests.app_server import serve_app


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ConversationStore]:
    url = default_url(tmp_path)
    upgrade(url)
    database = open_database(url)
    yield ConversationStore(Database(database))
    database.dispose()


def served(app: FastAPI) -> Iterator[httpx.Client]:
    with serve_app(app) as base:
        yield httpx.Client(base_url=base, timeout=30)


@pytest.fixture
def plain(sqlite_store: ConversationStore) -> Iterator[httpx.Client]:
    settings = Settings(auto_titles=False, max_body_bytes=2048)
    yield from served(create_app(settings, FakeEngine(n_ctx=2048), store=sqlite_store))


def test_docs_are_off_by_default_and_the_schema_stays(plain: httpx.Client) -> None:
    assert plain.get("/docs").status_code == 404
    assert plain.get("/redoc").status_code == 404
    assert plain.get("/docs/oauth2-redirect").status_code == 404
    schema = plain.get("/openapi.json")
    assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]


def test_every_answer_says_nosniff(plain: httpx.Client, sqlite_store: ConversationStore) -> None:
    from mingyan.store.accounts.account_store import AccountStore

    answers = {
        "health": plain.get("/health"),
        "schema": plain.get("/openapi.json"),
        "not found": plain.get("/no/such/route"),
        "bad body": plain.post(
            "/api/conversations", content=b"{not json", headers={"content-type": "application/json"}
        ),
        "too large": plain.post("/api/conversations", content=b"x" * 4096),
        "NUL in URL": plain.get("/api/conversations/a%00b"),
        "static": plain.get("/static/favicon.svg"),
        "stream": plain.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "stream": True}
        ),
    }
    AccountStore.open(sqlite_store.db).users.create_user("someone", "correct horse battery")
    answers["unauthorized"] = plain.get("/api/conversations")
    assert {name: r.status_code for name, r in answers.items()} == {
        "health": 200,
        "schema": 200,
        "not found": 404,
        "bad body": 400,
        "too large": 413,
        "NUL in URL": 400,
        "static": 200,
        "stream": 200,
        "unauthorized": 401,
    }
    for name, r in answers.items():
        assert r.headers.get_list("x-content-type-options") == ["nosniff"], name


def test_docs_when_asked_are_served_from_this_server_under_the_csp(sqlite_store: ConversationStore) -> None:
    args = build_parser().parse_args(["serve", "--api-docs"])
    settings = settings_from_args(args)
    assert settings.api_docs is True
    for client in served(create_app(settings, FakeEngine(n_ctx=2048), store=sqlite_store)):
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "<script>" not in page.text and "http" not in page.text  # no inline script, nothing remote
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in assets
        for asset in assets:
            r = client.get(asset)
            assert r.status_code == 200, asset
            assert r.headers["x-content-type-options"] == "nosniff"
            if asset.endswith(".js"):
                assert r.headers["content-type"].startswith("text/javascript"), asset


def test_docs_without_the_web_chat(tmp_path: Path) -> None:
    """An app without a store (no web chat) serves the docs' files all the same."""
    app = create_app(Settings(api_docs=True), FakeEngine(n_ctx=2048))
    for client in served(app):
        assert client.get("/docs").status_code == 200
        assert client.get("/static/js/api-docs.js").status_code == 200
        assert client.get("/").status_code == 404  # still no web chat
