"""`mingyan db ...`: manage the history database. Thin: parse, call, print."""

from __future__ import annotations

import argparse

from mingyan.cli.flags import add_settings_flags
from mingyan.config import Settings

DB_FIELDS = ("database_url", "data_dir")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="manage the history database",
                               description="Manage the conversation history database.")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply schema migrations (serve does this too)",
                                 description="Apply the schema migrations to the database.")
    add_settings_flags(upgrade, DB_FIELDS)
    upgrade.set_defaults(handler=upgrade_database)


def upgrade_database(args: argparse.Namespace, settings: Settings) -> int:
    from mingyan.bootstrap import migrate_database

    print(f"database {migrate_database(settings)} is up to date")
    return 0
