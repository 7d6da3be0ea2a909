"""The one database module: `Database` (engine, write and read sessions). SQLite gets WAL, full fsync,
enforced foreign keys, BEGIN IMMEDIATE writes and deferred reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from mingyan.store.vector_extension import load_sqlite_vec

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


def default_url(data_dir: Path | str) -> str:
    """The default database: `<data_dir>/mingyan.db`."""
    return f"sqlite:///{Path(data_dir) / 'mingyan.db'}"


def open_database(url: str, **engine_kwargs: Any) -> Engine:
    """An Engine for `url`. For SQLite, every connection gets the pragmas and transactions begin IMMEDIATE.
    Connections are checked before use, so the server reconnects by itself after a database restart."""
    engine_kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **engine_kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (`Session.execute` returns a CursorResult for those)."""
    assert isinstance(result, CursorResult)
    return result.rowcount or 0


READ_ONLY = "mingyan_read_only"


def make_sessionmaker(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`. Read-only ones begin deferred on SQLite, so they never hold the write lock."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()
        load_sqlite_vec(dbapi_connection)  # vector distances in SQL, when this Python can load it

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # readers see a snapshot and never block writers (WAL)
        else:
            # Writers take the write lock up front: no deadlocking upgrade from a read lock mid-transaction.
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One database: its SQLAlchemy engine, write sessions (`with db.sessions.begin()`) and read sessions.

    Every store object (conversations, accounts, search, transfer) works through one of these.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        self.reads: sessionmaker[Session] = make_sessionmaker(engine, read_only=True)

    @classmethod
    def open(cls, url: str, **engine_kwargs: Any) -> Database:
        return cls(open_database(url, **engine_kwargs))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
