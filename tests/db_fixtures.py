"""Database fixtures shared by every store test: each runs on SQLite and on a real PostgreSQL cluster.

`db_url` is parametrized over both; `store` is a migrated `ConversationStore` on it. PostgreSQL tests start one
throwaway cluster per session (tests/postgres.py) and give each test its own database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from tests import postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    bindir = postgres.find_binaries()
    if bindir is None:
        pytest.skip(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb and pg_ctl): "
            "`apt-get install postgresql` to run the store tests against PostgreSQL"
        )
    with postgres.cluster(bindir) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield default_url(tmp_path)
        return
    server_url = make_url(request.getfixturevalue("postgres_server"))
    name = f"t_{uuid.uuid4().hex}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server_url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[ConversationStore]:
    upgrade(db_url)
    engine = open_database(db_url)
    yield ConversationStore(Database(engine))
    engine.dispose()
