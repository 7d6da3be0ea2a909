"""pgvector, the PostgreSQL extension that computes vector distances inside the database.

Chunk vectors always stay portable: little-endian float32 blobs in `document_chunks.vector`, the
same on SQLite and PostgreSQL, read by the numpy path. Where the PostgreSQL server has pgvector
(installed in the database, or available to a role that may `CREATE EXTENSION`), each chunk's
vector is also kept in `document_chunk_vectors` (a pgvector `vector` column, with the embedding
model and its dimension beside it, so vectors of different models are never compared), filled on
ingest and back-filled from the blobs when the table is first set up or a process starts. A search
then ranks one owner's vectors (of one model, in the files in scope) by cosine distance in SQL, an
exact scan with no approximate index, so it finds what the numpy path finds, in the same order.

The table is not in the Alembic migrations, which stay portable: it is created here, under an
advisory lock, only when the extension is there. A server without pgvector is not an error: the
search takes the portable path, and the log says once which path is used.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, TextClause, bindparam, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

TABLE = "document_chunk_vectors"
LOCK = 0x6D696E67  # pg_advisory_xact_lock key while setting the table up
BATCH = 500  # vectors per back-fill round

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " chunk_id integer PRIMARY KEY REFERENCES document_chunks(id) ON DELETE CASCADE,"
    " owner varchar(64) NOT NULL, file_id varchar(32) NOT NULL, model varchar(200) NOT NULL,"
    " dimensions integer NOT NULL, embedding vector NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_owner_model ON {TABLE} (owner, model, dimensions)",
    f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_file ON {TABLE} (file_id)",
)
_INSERT = text(
    f"INSERT INTO {TABLE} (chunk_id, owner, file_id, model, dimensions, embedding) "
    "VALUES (:chunk_id, :owner, :file_id, :model, :dimensions, CAST(:embedding AS vector)) "
    "ON CONFLICT (chunk_id) DO NOTHING"
)
_MISSING = text(
    "SELECT c.id, c.owner, c.file_id, f.embedding_model, c.vector FROM document_chunks c "
    "JOIN document_files f ON f.id = c.file_id "
    f"WHERE c.vector IS NOT NULL AND f.embedding_model IS NOT NULL AND c.id > :after "
    f"AND NOT EXISTS (SELECT 1 FROM {TABLE} v WHERE v.chunk_id = c.id) ORDER BY c.id LIMIT :batch"
)


def literal(blob: bytes) -> str:
    """A float32 blob as pgvector's text form; each float32 is written exactly (it reads back equal)."""
    values = struct.unpack(f"<{len(blob) // 4}f", blob)
    return "[" + ",".join(repr(v) for v in values) + "]"


def row(chunk_id: int, owner: str, file_id: str, model: str, blob: bytes) -> dict:
    return {
        "chunk_id": chunk_id,
        "owner": owner,
        "file_id": file_id,
        "model": model,
        "dimensions": len(blob) // 4,
        "embedding": literal(blob),
    }


class PgVector:
    """The pgvector table of one PostgreSQL database (see the module's docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, engine: Engine) -> PgVector | None:
        """Set the table up and back-fill it where the database has (or may create) pgvector;
        None (the portable path) where it has not, or where setting it up fails."""
        if engine.dialect.name != "postgresql":
            return None
        try:
            version = _extension(engine)
            if version is None:
                return None
            with engine.begin() as connection:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
                for statement in _CREATE:
                    connection.execute(text(statement))
            store = cls(engine)
            filled = store.backfill()
        except DBAPIError as exc:
            log.warning("vector search in Python (portable): setting up pgvector failed: %s", exc)
            return None
        log.info("vector search in SQL by pgvector %s (%d vectors back-filled)", version, filled)
        return store

    def add(self, connection: Connection, rows: Iterable[dict]) -> None:
        """Insert vector rows (made by `row()`) in the caller's transaction."""
        rows = list(rows)
        if rows:
            connection.execute(_INSERT, rows)

    def backfill(self) -> int:
        """Copy every chunk vector the table lacks from `document_chunks`; the number copied."""
        copied, after = 0, 0
        while True:
            with self.engine.begin() as connection:
                found = connection.execute(_MISSING, {"after": after, "batch": BATCH}).all()
                if not found:
                    return copied
                self.add(connection, (row(int(i), o, f, m, bytes(v)) for i, o, f, m, v in found))
            copied, after = copied + len(found), int(found[-1][0])

    def nearest(
        self, owner: str, model: str, query: bytes, limit: int, file_ids: Sequence[str] | None = None
    ) -> list[int]:
        """The owner's `limit` chunks of `model` closest (cosine) to `query`, ties by chunk id."""
        statement = _nearest_sql(file_ids is not None)
        with self.engine.connect() as connection:
            found = connection.execute(statement, _params(owner, model, query, limit, file_ids))
            return [int(i) for i in found.scalars()]

    def explain(self, owner: str, model: str, query: bytes, limit: int) -> str:
        """PostgreSQL's plan for `nearest()` (for operators and tests: which table and operator)."""
        statement = text("EXPLAIN " + str(_nearest_sql(False)))
        with self.engine.connect() as connection:
            return "\n".join(connection.execute(statement, _params(owner, model, query, limit, None)).scalars())

    def count(self, file_id: str) -> int:
        with self.engine.connect() as connection:
            found = connection.scalar(text(f"SELECT count(*) FROM {TABLE} WHERE file_id = :f"), {"f": file_id})
            return int(found or 0)


def _extension(engine: Engine) -> str | None:
    """pgvector's version in the database, creating the extension where the server has it; None without."""
    with engine.connect() as connection:
        query = "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        version = connection.scalar(text(query))
        available = connection.scalar(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"))
    if version is not None:
        return str(version)
    if available is None:
        log.info("vector search in Python (portable): the PostgreSQL server has no pgvector extension")
        return None
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            return str(connection.scalar(text(query)))
    except DBAPIError as exc:
        log.info("vector search in Python (portable): pgvector is available but not created: %s", exc)
        return None


def _nearest_sql(scoped: bool) -> TextClause:
    scope = " AND file_id IN :file_ids" if scoped else ""
    statement = text(
        f"SELECT chunk_id FROM {TABLE} WHERE owner = :owner AND model = :model AND dimensions = :dimensions"
        f"{scope} ORDER BY embedding <=> CAST(:query AS vector), chunk_id LIMIT :limit"
    )
    return statement.bindparams(bindparam("file_ids", expanding=True)) if scoped else statement


def _params(owner: str, model: str, query: bytes, limit: int, file_ids: Sequence[str] | None) -> dict:
    params = {"owner": owner, "model": model, "dimensions": len(query) // 4, "query": literal(query), "limit": limit}
    if file_ids is not None:
        params["file_ids"] = list(file_ids)
    return params
