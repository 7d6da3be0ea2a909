"""sqlite-vec, the SQLite extension that computes vector distances inside the database.

Chunk vectors stay little-endian float32 blobs in `document_chunks.vector`, the format sqlite-vec
reads, so no schema change is needed: a search ranks one owner's chunks by `vec_distance_cosine`
in SQL and only the best ids leave the database.

Where Python's own sqlite3 can load extensions (Debian's and Ubuntu's python3, the official Docker
images), sqlite-vec is loaded into every connection of the database's engine. Some builds cannot
(pyenv's default build, for one): there vector searches go through a second, read-only engine on the
same database file through pysqlite3 (the `pysqlite3-binary` wheel, which bundles an SQLite that can
load extensions); WAL lets it read while the main engine writes. Where neither works (an in-memory
database, another platform without the wheel), vector search takes the portable path: numpy over
the owner's vectors.
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
from typing import Any

import sqlite_vec
from sqlalchemy import Engine, create_engine, event

log = logging.getLogger(__name__)


def load_sqlite_vec(dbapi_connection: Any) -> bool:
    """Load sqlite-vec into a new DB-API connection; False (and a debug line) where it cannot be."""
    try:
        dbapi_connection.enable_load_extension(True)
        try:
            sqlite_vec.load(dbapi_connection)
        finally:
            dbapi_connection.enable_load_extension(False)
    except Exception as exc:  # no extension support in this build (AttributeError), or a bad build
        log.debug("sqlite-vec not loaded: %s", exc)
        return False
    return True


def stdlib_loads_extensions() -> bool:
    return hasattr(sqlite3.Connection, "enable_load_extension")


def vector_engine(engine: Engine) -> Engine | None:
    """An engine whose connections have sqlite-vec loaded, on `engine`'s SQLite database: `engine`
    itself where the stdlib sqlite3 loads extensions, else a read-only one through pysqlite3; None
    for PostgreSQL, an in-memory database, or where pysqlite3 is not installed."""
    if engine.dialect.name != "sqlite":
        return None
    if stdlib_loads_extensions():
        return engine
    if engine.url.database in (None, "", ":memory:"):
        return None
    try:
        module = importlib.import_module("pysqlite3.dbapi2")
    except ImportError:
        return None
    reader = create_engine(engine.url, module=module, pool_pre_ping=True)

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        for pragma in ("PRAGMA query_only=ON", "PRAGMA busy_timeout=5000"):
            dbapi_connection.execute(pragma)
        load_sqlite_vec(dbapi_connection)

    return reader
