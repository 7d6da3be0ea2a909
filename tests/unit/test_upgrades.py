"""Upgrades: a database made by every earlier schema, full of data, upgrades to head with every row
kept and readable; a database from a newer mingyan is refused (there is no downgrade)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, func, insert, select, text

from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.credentials import Passwords, digest, username_key
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, open_database
from mingyan.store.migrate import SchemaTooNew, head_revision, known_revisions, upgrade

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def sample_rows(password_hash: str) -> dict[str, list[dict[str, Any]]]:
    """Rows for every table any schema has had, parents first. Columns a schema lacks are skipped."""
    conversation = {
        "owner": "u1",
        "model": "m",
        "settings": {"temperature": 0.5},
        "pinned": False,
        "archived": False,
        "system_prompt": "你是助手",
        "created_at": NOW,
        "updated_at": NOW,
    }
    message = {"conversation_id": "c1", "status": "complete", "created_at": NOW, "updated_at": NOW}
    return {
        "users": [
            {
                "id": "u1",
                "username": "Alice",
                "username_key": username_key("Alice"),
                "password_hash": password_hash,
                "role": "admin",
                "disabled": False,
                "created_at": NOW,
                "updated_at": NOW,
                "password_changed_at": NOW,
            }
        ],
        "conversations": [
            {**conversation, "id": "c1", "title": "长城", "current_leaf_id": None},
            {**conversation, "id": "c2", "title": "second", "pinned": True},
        ],
        "messages": [
            {**message, "id": "m1", "parent_id": None, "role": "user", "content": "长城有多长？"},
            {
                **message,
                "id": "m2",
                "parent_id": "m1",
                "role": "assistant",
                "content": "约两万公里。",
                "model_name": "qwen",
                "prompt_tokens": 12,
                "completion_tokens": 7,
                "finish_reason": "stop",
            },
            {
                **message,
                "id": "m3",
                "parent_id": "m1",
                "role": "assistant",
                "content": "another branch",
                "status": "stopped",
            },
        ],
        "login_sessions": [
            {
                "id": digest("session-token"),
                "user_id": "u1",
                "csrf_hash": digest("csrf"),
                "created_at": NOW,
                "expires_at": NOW + timedelta(days=3650),
                "last_seen_at": NOW,
            }
        ],
        "api_keys": [
            {
                "id": "k1",
                "user_id": "u1",
                "name": "script",
                "prefix": "my-abc",
                "key_hash": digest("my-x"),
                "created_at": NOW,
                "tokens_per_day": 1000,
            }
        ],
        "quotas": [{"user_id": "u1", "requests_per_minute": 5}],
        "usage_records": [
            {
                "user_id": "u1",
                "username": "Alice",
                "route": "chat.completions",
                "model": "m",
                "prompt_tokens": 10,
                "cached_tokens": 2,
                "completion_tokens": 5,
                "created_at": NOW,
            }
        ],
        "audit_events": [
            {"at": NOW, "actor_name": "cli", "event": "user_created", "target": "Alice", "details": {"role": "admin"}}
        ],
    }


def fill(db: Database, rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Insert what the database's current schema can hold; returns rows per table."""
    meta = MetaData()
    meta.reflect(db.engine)
    counts = {}
    with db.engine.begin() as connection:
        for name, table_rows in rows.items():
            if name not in meta.tables:
                continue
            table = meta.tables[name]
            for row in table_rows:
                values = {k: v for k, v in row.items() if k in table.c}
                missing = [
                    c.name
                    for c in table.c
                    if not c.nullable
                    and c.name not in values
                    and c.server_default is None
                    and not (c.primary_key and c.name == "id")
                ]
                assert not missing, f"sample rows lack required columns of {name}: {missing}"
                connection.execute(insert(table).values(**values))
            counts[name] = len(table_rows)
        if "conversations" in meta.tables:
            connection.execute(text("UPDATE conversations SET current_leaf_id = 'm2' WHERE id = 'c1'"))
    return counts


def count(db: Database, table: str) -> int:
    meta = MetaData()
    meta.reflect(db.engine, only=[table])
    with db.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(meta.tables[table])).scalar_one()


@pytest.mark.parametrize("revision", known_revisions())  # head too: the rows of every table are read back
def test_upgrade_from_every_earlier_schema_keeps_every_row(db_url: str, revision: str) -> None:
    upgrade(db_url, revision)
    db = Database.open(db_url)
    try:
        written = fill(db, sample_rows(Passwords().hash(PASSWORD)))
        upgrade(db_url)
        assert {table: count(db, table) for table in written} == written
        store = ConversationStore(db)
        tree = store.tree("u1", "c1")
        assert sorted(m.id for m in tree.messages) == ["m1", "m2", "m3"]
        assert [m.content for m in store.path_to("u1", "c1")] == ["长城有多长？", "约两万公里。"]
        assert store.get_conversation("u1", "c2").pinned
        if "users" in written:
            accounts = AccountStore.open(db)
            assert accounts.users.authenticate("alice", PASSWORD) is not None
            assert [k.name for k in accounts.keys.list_keys("u1")] == ["script"]
            assert accounts.ledger.get_quota_overrides("u1").requests_per_minute == 5
    finally:
        db.dispose()


def test_a_database_from_a_newer_mingyan_is_refused(db_url: str, tmp_path) -> None:
    upgrade(db_url)
    engine = open_database(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaTooNew, match="newer than this mingyan"):
        upgrade(db_url)
    result = subprocess.run(
        [sys.executable, "-m", "mingyan", "db", "upgrade", "--database-url", db_url, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "does not downgrade" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_head_is_the_newest_known_revision() -> None:
    assert known_revisions()[-1] == head_revision()
