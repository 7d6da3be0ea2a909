"""schemathesis over the app's own OpenAPI schema, anonymous and signed in (as an administrator, so
every route is reached): whatever it sends, no 5xx, and the server stays up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url
from mingyan.store.migrate import upgrade
from tests.app_server import serve_app

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@dataclass
class Target:
    url: str
    key: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The app on each database (PostgreSQL is stricter: 32-bit INTEGER, no NUL in text)."""
    if request.param == "sqlite":
        url = default_url(tmp_path_factory.mktemp("fuzz"))
    else:
        server = make_url(request.getfixturevalue("postgres_server"))
        name = f"fuzz_{uuid.uuid4().hex}"
        admin_engine = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin_engine.dispose()
        url = server.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    store = ConversationStore(Database.open(url))
    accounts = AccountStore.open(store.db)
    admin = accounts.users.create_user("fuzzer", "correct horse battery", role="admin")
    _, key = accounts.keys.create_key(admin.id, "fuzz")
    settings_ = Settings(auto_titles=False, quota_requests_per_minute=0, quota_concurrent_streams=0)
    with serve_app(create_app(settings_, FakeEngine(n_ctx=512), store=store)) as base:
        yield Target(base, key)
        assert httpx.get(base + "/health", timeout=10).status_code == 200  # still up after it all
    store.engine.dispose()


@pytest.fixture(scope="module")
def api_schema(target: Target):
    return schemathesis.openapi.from_url(target.url + "/openapi.json")


def fuzz(api_schema, target: Target, headers: dict[str, str]) -> int:
    """Run every operation of the schema with generated requests; return how many operations ran."""
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case) -> None:
            response = case.call(base_url=target.url, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {case.as_curl_command()} -> {response.text[:200]}")

        run()
    assert not failures, "\n".join(failures[:10])
    return len(operations)


def test_no_server_errors_anonymous(api_schema, target: Target) -> None:
    assert fuzz(api_schema, target, {}) >= 30


def test_no_server_errors_signed_in(api_schema, target: Target) -> None:
    assert fuzz(api_schema, target, {"Authorization": f"Bearer {target.key}"}) >= 30


def test_the_schema_covers_the_api(api_schema) -> None:
    paths = {result.ok().path for result in api_schema.get_all_operations()}
    assert {"/v1/chat/completions", "/api/conversations", "/api/admin/users", "/api/import"} <= paths
