"""`mingyan db ...`: the history database: status, upgrade, backup, restore. Thin: parse, call, print."""

from __future__ import annotations

import argparse
from pathlib import Path

from mingyan.cli.flags import add_settings_flags
from mingyan.config import Settings

DB_FIELDS = ("database_url", "data_dir")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser(
        "db",
        help="manage the history database: status, upgrade, backup, restore",
        description="Manage the conversation history database.",
    )
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="the schema version and what the database holds",
        description="Show the database, its schema version and row counts.",
    )
    status.set_defaults(handler=show_status)
    upgrade = actions.add_parser(
        "upgrade",
        help="apply schema migrations (serve does this too)",
        description="Apply the schema migrations to the database. A database "
        "written by a newer mingyan is refused: there is no downgrade.",
    )
    upgrade.set_defaults(handler=upgrade_database)
    backup = actions.add_parser(
        "backup",
        help="write a consistent copy of the database to FILE (works while serving)",
        description="Back up the database while the server runs: SQLite's online backup API, or "
        "pg_dump for PostgreSQL. Saved KV-cache files are not needed to restore.",
    )
    backup.add_argument("file", type=Path, help="the backup file to write (must not exist)")
    backup.set_defaults(handler=backup_database)
    restore = actions.add_parser(
        "restore",
        help="load a backup into a new, empty database, then upgrade its schema",
        description="Restore FILE (made by `mingyan db backup`) into the configured database, which must "
        "hold no mingyan data (a new --data-dir, or a new PostgreSQL database). Stop the server first.",
    )
    restore.add_argument("file", type=Path, help="the backup file to read")
    restore.set_defaults(handler=restore_database)
    for action in (status, upgrade, backup, restore):
        add_settings_flags(action, DB_FIELDS)


def upgrade_database(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.bootstrap import migrate_database

    print(f"database {migrate_database(settings)} is up to date")
    return 0


def show_status(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.bootstrap import database_status

    status = database_status(settings)
    print(f"database: {status.url}")
    print(
        f"schema: {status.revision or 'empty'} (this mingyan: {status.head})"
        + ("" if status.revision == status.head else " — run `mingyan db upgrade`")
    )
    for table, count in status.counts.items():
        print(f"{table}: {count}")
    return 0


def backup_database(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.bootstrap import database_url
    from mingyan.store.backup import backup

    info = backup(database_url(settings), args.file)
    print(f"backed up to {info.path} ({info.bytes:,} bytes, {info.kind})")
    return 0


def restore_database(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.bootstrap import database_url, migrate_database
    from mingyan.store.backup import restore

    restore(database_url(settings), args.file)
    shown = migrate_database(settings)
    print(f"restored {args.file} into {shown}; the schema is up to date")
    return 0
