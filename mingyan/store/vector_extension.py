"""sqlite-vec, the SQLite extension that computes vector distances inside the database: loaded into
each SQLite connection when Python's sqlite3 can load extensions (some builds cannot; then vector
search falls back to the portable path, numpy over the owner's vectors).

Chunk vectors stay little-endian float32 blobs in `document_chunks.vector`, which is the format
sqlite-vec reads, so no schema change is needed: a search ranks one owner's chunks by
`vec_distance_cosine` in SQL and only the best ids leave the database.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import sqlite_vec

log = logging.getLogger(__name__)


def load_sqlite_vec(dbapi_connection: Any) -> bool:
    """Load sqlite-vec into a new sqlite3 connection; False (and a debug line) where it cannot be."""
    try:
        dbapi_connection.enable_load_extension(True)
        try:
            sqlite_vec.load(dbapi_connection)
        finally:
            dbapi_connection.enable_load_extension(False)
    except (AttributeError, sqlite3.Error) as exc:  # no extension support in this Python, or a bad build
        log.debug("sqlite-vec not loaded: %s", exc)
        return False
    return True
