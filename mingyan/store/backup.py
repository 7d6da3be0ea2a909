"""Backups of the history database while the server runs, and restores into an empty database.

- SQLite: SQLite's online backup API copies a consistent snapshot page by page (writers may go on
  meanwhile); the backup is itself a SQLite database file, checked with `integrity_check`.
- PostgreSQL: `pg_dump --format=custom` (a consistent snapshot of one transaction), restored with
  `pg_restore` — the tools of the server's own PostgreSQL installation.

A restore goes into a database that holds no mingyan data (refused otherwise), then the schema is
brought up to this mingyan's version (a backup from an older release restores and upgrades). Saved
KV-cache files are not part of a backup: they are a cache, rebuilt as conversations continue.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from mingyan.errors import MingyanError
from mingyan.store.db import open_database

MINGYAN_TABLES = ("conversations", "messages", "users")


class BackupError(MingyanError):
    """A backup or restore could not be made; nothing was changed."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    kind: str  # "sqlite" or "pg_dump"


def backup(url: str, target: Path) -> BackupInfo:
    """Write a consistent copy of the database at `url` to `target` (written whole, then renamed)."""
    if target.exists():
        raise BackupError(f"{target} exists already: choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        kind = _backup_sqlite(url, partial) if _is_sqlite(url) else _pg_dump(url, partial)
        _fsync(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(target, target.stat().st_size, kind)


def restore(url: str, source: Path) -> None:
    """Load the backup `source` into the database at `url`, which must hold no mingyan data."""
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    _refuse_if_holding_data(url)
    if _is_sqlite(url):
        _restore_sqlite(url, source)
    else:
        _pg_restore(url, source)


# ---- SQLite ------------------------------------------------------------------------------------


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _backup_sqlite(url: str, partial: Path) -> str:
    source_path = _sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"no database at {source_path}")
    source = sqlite3.connect(source_path)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy, pages=256)  # in steps: writers are not held up for the whole copy
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        _check_sqlite(copy, partial)
    finally:
        copy.close()
        source.close()
    return "sqlite"


def _check_sqlite(connection: sqlite3.Connection, path: Path) -> None:
    result = connection.execute("PRAGMA integrity_check").fetchone()
    if not result or result[0] != "ok":
        raise BackupError(f"{path} failed SQLite's integrity check: {result[0] if result else 'no answer'}")


def _restore_sqlite(url: str, source: Path) -> None:
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as check:
            _check_sqlite(check, source)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not a SQLite backup of mingyan: {exc}") from exc
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    shutil.copyfile(source, partial)
    _fsync(partial)
    for leftover in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
        leftover.unlink(missing_ok=True)
    os.replace(partial, target)


# ---- PostgreSQL --------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    """The URL as libpq's tools take it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run_tool(args: list[str], what: str) -> None:
    tool = shutil.which(args[0])
    if tool is None:
        raise BackupError(f"{args[0]} is not installed: install PostgreSQL's client tools (Debian: postgresql-client)")
    result = subprocess.run([tool, *args[1:]], capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackupError(f"{what} failed: {detail}")


def _pg_dump(url: str, partial: Path) -> str:
    _run_tool(
        ["pg_dump", "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={_libpq_url(url)}"], "pg_dump"
    )
    return "pg_dump"


def _pg_restore(url: str, source: Path) -> None:
    _run_tool(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={_libpq_url(url)}",
            str(source),
        ],
        "pg_restore",
    )


# ---- both --------------------------------------------------------------------------------------


def _refuse_if_holding_data(url: str) -> None:
    if _is_sqlite(url) and not _sqlite_path(url).exists():
        return
    engine = open_database(url)
    try:
        present = set(inspect(engine).get_table_names()) & set(MINGYAN_TABLES)
        if present:
            with engine.connect() as connection:
                rows = sum(connection.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one() for t in present)
            if rows or _is_sqlite(url) is False:
                raise BackupError(
                    "the target database already holds mingyan tables: restore into a new, empty database "
                    "(a new --data-dir, or a new PostgreSQL database)"
                )
    finally:
        engine.dispose()


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
