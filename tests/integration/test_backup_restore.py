"""Backups while serving: `mingyan db backup` runs while replies stream; `mingyan db restore` into a
fresh database finds every message that was complete before the backup began (SQLite and PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import SMOLLM, start_server, stop_server
from tests.integration.test_durable_history import new_conversation, server_args, sse


def mingyan(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mingyan", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def complete_messages(url: str) -> set[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, role, content FROM messages WHERE status = 'complete'"))
            return {tuple(row) for row in rows}
    finally:
        engine.dispose()


def fresh_target(db_url: str, tmp_path: Path) -> str:
    """Where to restore: a new SQLite file, or a new database on the same PostgreSQL server."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored' / 'mingyan.db'}"
    url = make_url(db_url)
    name = f"restored_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def stream_reply(api: httpx.Client, cid: str, content: str, done: threading.Event) -> None:
    with api.stream("POST", f"/conversations/{cid}/messages", json={"content": content}) as r:
        for event in sse(r.iter_lines()):
            if event["type"] == "done":
                break
    done.set()


@pytest.mark.timeout(900)
def test_backup_while_replies_stream_then_restore_finds_every_completed_message(tmp_path, db_url) -> None:
    server = start_server(tmp_path, SMOLLM, *server_args(db_url))
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=120)
        for i in range(3):  # finished conversations
            cid = new_conversation(api)
            r = api.post(
                f"/conversations/{cid}/messages",
                json={"content": f"Say the number {i}.", "stream": False, "settings": {"max_tokens": 16}},
            )
            assert r.status_code == 200, r.text
        before = complete_messages(db_url)
        assert len(before) == 6
        done = threading.Event()
        streaming = threading.Thread(
            target=stream_reply, args=(api, new_conversation(api), "Count from 1 to 200 in words.", done), daemon=True
        )
        streaming.start()
        backup_file = tmp_path / "backup.bin"
        result = mingyan("db", "backup", str(backup_file), "--database-url", db_url, data_dir=tmp_path)
        assert result.returncode == 0, result.stderr
        assert not done.is_set(), "the reply ended before the backup: the test did not back up while streaming"
        streaming.join(300)
    finally:
        stop_server(server)

    target = fresh_target(db_url, tmp_path)
    restored = mingyan("db", "restore", str(backup_file), "--database-url", target, data_dir=tmp_path / "other")
    assert restored.returncode == 0, restored.stderr
    assert before <= complete_messages(target)  # every completed message, with its text
    again = mingyan("db", "restore", str(backup_file), "--database-url", target, data_dir=tmp_path / "other")
    assert again.returncode == 1 and "already holds" in again.stderr and "Traceback" not in again.stderr

    status = mingyan("db", "status", "--database-url", target, data_dir=tmp_path / "other")
    assert status.returncode == 0 and "schema:" in status.stdout and "messages:" in status.stdout


def test_backup_refuses_to_overwrite_and_restore_needs_a_backup(tmp_path) -> None:
    (tmp_path / "taken").write_text("x")
    assert mingyan("db", "upgrade", data_dir=tmp_path).returncode == 0
    taken = mingyan("db", "backup", str(tmp_path / "taken"), data_dir=tmp_path)
    assert taken.returncode == 1 and "exists already" in taken.stderr
    missing = mingyan("db", "restore", str(tmp_path / "nope.db"), data_dir=tmp_path / "fresh")
    assert missing.returncode == 1 and "no backup file" in missing.stderr
    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    garbage = mingyan("db", "restore", str(tmp_path / "garbage.db"), data_dir=tmp_path / "fresh2")
    assert garbage.returncode == 1 and "not a SQLite backup" in garbage.stderr, garbage.stderr
    assert not (tmp_path / "fresh2" / "mingyan.db").exists()
