"""Alembic environment: online migrations only, through mingyan's own engine setup."""

from __future__ import annotations

from alembic import context

from mingyan.store.db import open_database
from mingyan.store.tables import Base


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None, "mingyan.store.migrate sets sqlalchemy.url"
    engine = open_database(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("mingyan runs migrations online only: call mingyan.store.migrate.upgrade(url)")
run_migrations_online()
