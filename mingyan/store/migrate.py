"""Schema migrations, run programmatically: no alembic.ini on disk."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from mingyan.errors import MingyanError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaTooNew(MingyanError):
    """The database was upgraded by a newer mingyan."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (default: the latest). Idempotent. Refuses a
    database whose schema is newer than this mingyan's (SchemaTooNew)."""
    from mingyan.store.db import open_database

    engine = open_database(url)
    try:
        check_not_newer(engine)
    finally:
        engine.dispose()
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest schema this mingyan knows."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """Every schema revision this mingyan knows, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_not_newer(engine: Engine) -> None:
    """Refuse a database written by a newer mingyan: this one cannot read its schema, and there
    is no downgrade (restore a backup taken before the upgrade instead)."""
    current = current_revision(engine)
    if current is not None and current not in known_revisions():
        raise SchemaTooNew(
            f"the database's schema ({current}) is newer than this mingyan knows (up to {head_revision()}): "
            "upgrade mingyan, or restore a backup taken before the database was upgraded; "
            "mingyan does not downgrade a database"
        )
