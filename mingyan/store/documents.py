"""DocumentStore: uploaded files, their bytes, chunks, BM25 postings and vectors, one owner at a time.

Every method takes `owner`; another owner's file reads as missing (NotFound). A file and all of its
rows are written in one transaction, so a failure leaves nothing behind; deleting a file deletes its
bytes, chunks, postings and vectors (foreign keys cascade).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Float, case, cast, delete, func, insert, literal, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from mingyan.errors import MingyanError
from mingyan.store.db import Database
from mingyan.store.errors import NotFound
from mingyan.store.pgvector import PgVector, row
from mingyan.store.tables import DocumentBlob, DocumentChunk, DocumentFile, DocumentTerm, Message, MessageCitation
from mingyan.store.vector_extension import vector_engine

MAX_TERM = 64  # longer terms are cut to this many characters
log = logging.getLogger(__name__)


class QuotaExceeded(MingyanError):
    """The owner's files would take more than their storage quota."""


@dataclass(frozen=True)
class NewChunk:
    ordinal: int
    page: int
    start: int
    end: int
    text: str
    terms: dict[str, int]  # term -> occurrences
    length: int  # terms in the chunk, repeats counted
    vector: bytes | None = None


@dataclass(frozen=True)
class NewFile:
    name: str
    kind: str
    sha256: str
    data: bytes
    pages: int
    chars: int
    embedding_model: str | None


@dataclass(frozen=True)
class StoredChunk:
    id: int
    file_id: str
    file_name: str
    ordinal: int
    page: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Added:
    file: DocumentFile
    duplicate: bool  # the owner already had a file with these bytes: that one is returned


class DocumentStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._vector_engine: Engine | None = None  # with sqlite-vec loaded (store/vector_extension.py)
        self._vector_checked = False
        self._pgvector: PgVector | None = None  # PostgreSQL with pgvector (store/pgvector.py)
        self._pgvector_checked = False
        self._pgvector_lock = threading.Lock()

    def add(self, owner: str, new: NewFile, chunks: Sequence[NewChunk], quota_bytes: int) -> Added:
        """Store a file with its chunks (all or nothing). A file whose sha256 the owner already has is
        not stored again. QuotaExceeded when the owner's files would pass `quota_bytes` (0: no quota)."""
        existing = self.find_by_sha256(owner, new.sha256)
        if existing is not None:
            return Added(existing, duplicate=True)
        pgvector = self.pgvector()  # set up (once) before the transaction
        try:
            with self.db.sessions.begin() as session:
                file, ids = self._insert(session, owner, new, chunks, quota_bytes)
                if pgvector is not None and new.embedding_model:
                    model, pairs = new.embedding_model, zip(ids, chunks, strict=True)
                    vectors = (row(i, owner, file.id, model, c.vector) for i, c in pairs if c.vector)
                    pgvector.add(session.connection(), vectors)
                return Added(file, duplicate=False)
        except IntegrityError:  # the same bytes uploaded twice at once: the other upload won
            existing = self.find_by_sha256(owner, new.sha256)
            if existing is None:
                raise
            return Added(existing, duplicate=True)

    def _insert(
        self, session: Session, owner: str, new: NewFile, chunks: Sequence[NewChunk], quota_bytes: int
    ) -> tuple[DocumentFile, list[int]]:
        if quota_bytes:
            used = session.scalar(
                select(func.coalesce(func.sum(DocumentFile.size), 0)).where(DocumentFile.owner == owner)
            )
            if int(used or 0) + len(new.data) > quota_bytes:
                raise QuotaExceeded(
                    f"Your files would take {int(used or 0) + len(new.data):,} bytes; your storage quota is "
                    f"{quota_bytes:,} bytes. Delete some files first."
                )
        file = DocumentFile(
            owner=owner,
            name=new.name,
            kind=new.kind,
            sha256=new.sha256,
            size=len(new.data),
            pages=new.pages,
            chars=new.chars,
            embedding_model=new.embedding_model,
        )
        session.add(file)
        session.flush()
        session.add(DocumentBlob(file_id=file.id, data=new.data))
        return file, _insert_chunks(session, file.id, owner, chunks)

    def find_by_sha256(self, owner: str, sha256: str) -> DocumentFile | None:
        with self.db.reads() as session:
            query = select(DocumentFile).where(DocumentFile.owner == owner, DocumentFile.sha256 == sha256)
            return session.scalars(query).first()

    def list_files(self, owner: str) -> list[DocumentFile]:
        with self.db.reads() as session:
            query = select(DocumentFile).where(DocumentFile.owner == owner)
            return list(session.scalars(query.order_by(DocumentFile.created_at.desc(), DocumentFile.id)))

    def get(self, owner: str, file_id: str) -> DocumentFile:
        with self.db.reads() as session:
            file = session.get(DocumentFile, file_id)
            if file is None or file.owner != owner:
                raise NotFound(f"No file {file_id!r}.")
            return file

    def content(self, owner: str, file_id: str) -> tuple[DocumentFile, bytes]:
        file = self.get(owner, file_id)
        with self.db.reads() as session:
            blob = session.get(DocumentBlob, file.id)
            if blob is None:
                raise NotFound(f"No file {file_id!r}.")
            return file, blob.data

    def delete(self, owner: str, file_id: str) -> None:
        with self.db.sessions.begin() as session:
            file = session.get(DocumentFile, file_id)
            if file is None or file.owner != owner:
                raise NotFound(f"No file {file_id!r}.")
            # Children first: the cascade needs foreign keys on, and postings are many.
            chunk_ids = select(DocumentChunk.id).where(DocumentChunk.file_id == file_id)
            session.execute(delete(DocumentTerm).where(DocumentTerm.chunk_id.in_(chunk_ids)))
            session.execute(delete(DocumentChunk).where(DocumentChunk.file_id == file_id))
            session.execute(delete(DocumentBlob).where(DocumentBlob.file_id == file_id))
            session.execute(delete(MessageCitation).where(MessageCitation.file_id == file_id))
            session.delete(file)

    def used_bytes(self, owner: str) -> int:
        with self.db.reads() as session:
            total = session.scalar(select(func.sum(DocumentFile.size)).where(DocumentFile.owner == owner))
            return int(total or 0)

    # ---- retrieval ---------------------------------------------------------------------------

    def chunks(
        self, owner: str, file_ids: Sequence[str] | None = None, ids: Sequence[int] | None = None
    ) -> list[StoredChunk]:
        """The owner's chunks (of `file_ids`, or with `ids`), in file and reading order."""
        query = (
            select(DocumentChunk, DocumentFile.name)
            .join(DocumentFile, DocumentFile.id == DocumentChunk.file_id)
            .where(DocumentChunk.owner == owner)
        )
        if file_ids is not None:
            query = query.where(DocumentChunk.file_id.in_(list(file_ids)))
        if ids is not None:
            query = query.where(DocumentChunk.id.in_(list(ids)))
        with self.db.reads() as session:
            rows = session.execute(query.order_by(DocumentChunk.file_id, DocumentChunk.ordinal)).all()
        return [_stored(chunk, name) for chunk, name in rows]

    def corpus_stats(self, owner: str, file_ids: Sequence[str] | None = None) -> tuple[int, float]:
        """(chunks, mean terms per chunk) over the owner's chunks (of `file_ids`)."""
        query = select(func.count(), func.avg(DocumentChunk.length)).where(DocumentChunk.owner == owner)
        if file_ids is not None:
            query = query.where(DocumentChunk.file_id.in_(list(file_ids)))
        with self.db.reads() as session:
            count, mean = session.execute(query).one()
        return int(count or 0), float(mean or 0.0)

    def term_frequencies(
        self, owner: str, terms: Sequence[str], file_ids: Sequence[str] | None = None
    ) -> dict[str, int]:
        """How many of the owner's chunks (of `file_ids`) hold each of `terms` (terms held by none left out)."""
        wanted = sorted({term[:MAX_TERM] for term in terms})
        if not wanted:
            return {}
        query = (
            select(DocumentTerm.term, func.count())
            .where(DocumentTerm.owner == owner, DocumentTerm.term.in_(wanted))
            .group_by(DocumentTerm.term)
        )
        if file_ids is not None:
            query = query.join(DocumentChunk, DocumentChunk.id == DocumentTerm.chunk_id)
            query = query.where(DocumentChunk.file_id.in_(list(file_ids)))
        with self.db.reads() as session:
            return {str(term): int(n) for term, n in session.execute(query).all()}

    def bm25_top(
        self,
        owner: str,
        weights: Mapping[str, float],
        mean_length: float,
        limit: int,
        file_ids: Sequence[str] | None = None,
        *,
        k1: float,
        b: float,
    ) -> list[int]:
        """The ids of the owner's `limit` best chunks (of `file_ids`) by BM25, scored inside the
        database: the sum, over the query terms a chunk holds, of the term's weight (its idf) times
        count·(k1+1) / (count + k1·(1 − b + b·length/mean_length)); best first, ties by id. Only
        the winners leave the database (a common term's postings can be most of the chunks)."""
        if not weights:
            return []
        weight = case(*((DocumentTerm.term == t, literal(w, Float)) for t, w in weights.items()), else_=0.0)
        count = cast(DocumentTerm.count, Float)
        norm = literal(k1 * (1 - b), Float) + literal(k1 * b / max(mean_length, 1.0), Float) * cast(
            DocumentChunk.length, Float
        )
        score = func.sum(weight * count * (k1 + 1) / (count + norm))
        query = (
            select(DocumentTerm.chunk_id)
            .join(DocumentChunk, DocumentChunk.id == DocumentTerm.chunk_id)
            .where(DocumentTerm.owner == owner, DocumentTerm.term.in_(list(weights)))
            .group_by(DocumentTerm.chunk_id)
            .order_by(score.desc(), DocumentTerm.chunk_id)
            .limit(limit)
        )
        if file_ids is not None:
            query = query.where(DocumentChunk.file_id.in_(list(file_ids)))
        with self.db.reads() as session:
            return [int(i) for i in session.scalars(query)]

    def vectors(self, owner: str, model: str, file_ids: Sequence[str] | None = None) -> tuple[list[int], list[bytes]]:
        """Ids and float32 vectors of the owner's chunks embedded by `model`."""
        query = _embedded(select(DocumentChunk.id, DocumentChunk.vector), owner, model, file_ids)
        query = query.order_by(DocumentChunk.id)  # equal vectors rank by id, as in SQL
        with self.db.reads() as session:
            rows = session.execute(query).all()
        return [int(r[0]) for r in rows], [bytes(r[1] or b"") for r in rows]

    def nearest(
        self, owner: str, model: str, query: bytes, limit: int, file_ids: Sequence[str] | None = None
    ) -> list[int] | None:
        """The ids of the owner's `limit` chunks embedded by `model` whose vectors lie closest (cosine)
        to the float32 vector `query`, ranked inside the database by sqlite-vec or pgvector; None
        where the database cannot (PostgreSQL without pgvector, SQLite without sqlite-vec): rank
        `vectors()` instead."""
        pgvector = self.pgvector()
        if pgvector is not None:
            return pgvector.nearest(owner, model, query, limit, file_ids)
        engine = self.vectors_in_sql()
        if engine is None:
            return None
        distance = func.vec_distance_cosine(DocumentChunk.vector, query)
        ranked = _embedded(select(DocumentChunk.id), owner, model, file_ids).order_by(distance, DocumentChunk.id)
        with engine.connect() as connection:
            return [int(i) for i in connection.scalars(ranked.limit(limit))]

    def vectors_in_sql(self) -> Engine | None:
        """The engine whose connections compute vector distances (SQLite with sqlite-vec), or None."""
        if not self._vector_checked:
            engine = vector_engine(self.db.engine)
            try:
                if engine is not None:
                    with engine.connect() as connection:
                        connection.scalar(text("SELECT vec_version()"))
            except DBAPIError as exc:
                log.info("vector search without sqlite-vec: %s", exc)
                engine = None
            self._vector_engine, self._vector_checked = engine, True
        return self._vector_engine

    def pgvector(self) -> PgVector | None:
        """The pgvector table (set up and back-filled on first use), or None: not PostgreSQL, or no pgvector."""
        with self._pgvector_lock:
            if not self._pgvector_checked:
                self._pgvector, self._pgvector_checked = PgVector.open(self.db.engine), True
            return self._pgvector

    def vector_search(self) -> str:
        """Where vector searches are ranked: "pgvector", "sqlite-vec" (in SQL) or "numpy" (portable)."""
        if self.pgvector() is not None:
            return "pgvector"
        return "sqlite-vec" if self.vectors_in_sql() is not None else "numpy"


class CitationStore:
    """The passages each reply cited. Deleting a file deletes the citations of it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, message_id: str, citations: Sequence[CitationRow], content: str | None = None) -> Message | None:
        """Store a reply's citations, and its corrected text when `content` is given, in one
        transaction (the markers shown are the citations stored). The message, or None if it is gone."""
        with self.db.sessions.begin() as session:
            message = session.get(Message, message_id)
            if message is None:
                return None
            if content is not None:
                message.content = content
            for c in citations:
                session.add(
                    MessageCitation(
                        message_id=message_id,
                        marker=c.marker,
                        file_id=c.file_id,
                        page=c.page,
                        start_offset=c.start,
                        end_offset=c.end,
                        text=c.text,
                    )
                )
            return message

    def of_messages(self, owner: str, message_ids: Sequence[str]) -> dict[str, list[CitationRow]]:
        """The citations of the owner's messages among `message_ids`, by message, in marker order."""
        with self.db.reads() as session:
            return citations_of(session, owner, message_ids)


def citations_of(session: Session, owner: str, message_ids: Sequence[str]) -> dict[str, list[CitationRow]]:
    """The citations of `owner`'s messages among `message_ids` (read in `session`), by message."""
    if not message_ids:
        return {}
    query = (
        select(MessageCitation, DocumentFile.name)
        .join(DocumentFile, DocumentFile.id == MessageCitation.file_id)
        .join(Message, Message.id == MessageCitation.message_id)
        .where(MessageCitation.message_id.in_(list(message_ids)), DocumentFile.owner == owner)
        .order_by(MessageCitation.message_id, MessageCitation.marker)
    )
    found: dict[str, list[CitationRow]] = {}
    for c, name in session.execute(query).all():
        row = CitationRow(c.marker, c.file_id, name, c.page, c.start_offset, c.end_offset, c.text)
        found.setdefault(c.message_id, []).append(row)
    return found


@dataclass(frozen=True)
class CitationRow:
    marker: int
    file_id: str
    file_name: str
    page: int
    start: int
    end: int
    text: str


def _embedded(query: Any, owner: str, model: str, file_ids: Sequence[str] | None) -> Any:
    """`query` over the owner's chunks (of `file_ids`) that carry a vector made by `model`."""
    query = query.join(DocumentFile, DocumentFile.id == DocumentChunk.file_id).where(
        DocumentChunk.owner == owner, DocumentFile.embedding_model == model, DocumentChunk.vector.is_not(None)
    )
    if file_ids is not None:
        query = query.where(DocumentChunk.file_id.in_(list(file_ids)))
    return query


def _insert_chunks(session: Session, file_id: str, owner: str, chunks: Sequence[NewChunk]) -> list[int]:
    """One multi-row INSERT ... RETURNING for the chunks (their ids, in the rows' order), one for their postings."""
    if not chunks:
        return []
    rows = [
        {
            "file_id": file_id,
            "owner": owner,
            "ordinal": c.ordinal,
            "page": c.page,
            "start_offset": c.start,
            "end_offset": c.end,
            "text": c.text,
            "length": c.length,
            "vector": c.vector,
        }
        for c in chunks
    ]
    returning = insert(DocumentChunk).returning(DocumentChunk.id, sort_by_parameter_order=True)
    ids = list(session.scalars(returning, rows))
    postings = [p for chunk_id, c in zip(ids, chunks, strict=True) for p in _postings(chunk_id, owner, c.terms)]
    if postings:
        session.execute(insert(DocumentTerm), postings)
    return ids


def _postings(chunk_id: int, owner: str, terms: dict[str, int]) -> list[dict]:
    merged: dict[str, int] = {}
    for term, count in terms.items():
        key = term[:MAX_TERM]
        merged[key] = merged.get(key, 0) + count
    return [{"chunk_id": chunk_id, "term": t, "owner": owner, "count": c} for t, c in merged.items()]


def _stored(chunk: DocumentChunk, name: str) -> StoredChunk:
    return StoredChunk(
        chunk.id, chunk.file_id, name, chunk.ordinal, chunk.page, chunk.start_offset, chunk.end_offset, chunk.text
    )
