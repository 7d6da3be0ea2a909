"""DocumentService: take a user's file (extract, chunk, index, embed, store, all or nothing), list,
read and delete it, and search the user's files (BM25 + vectors, fused)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mingyan.config import Settings
from mingyan.documents import ranking
from mingyan.documents.chunking import Chunk, chunk_pages
from mingyan.documents.errors import StorageQuotaExceeded
from mingyan.documents.extract import extract
from mingyan.documents.limits import Limits
from mingyan.documents.pages import Extracted
from mingyan.documents.terms import Segmenter
from mingyan.documents.vectors import embed_passages, embed_query
from mingyan.engine.base import Embedder
from mingyan.store.db import Database
from mingyan.store.documents import Added, DocumentStore, NewChunk, NewFile, QuotaExceeded, StoredChunk
from mingyan.store.tables import DocumentFile

MODES = ("hybrid", "bm25", "vector")
CANDIDATES = 50  # per ranking, before fusion
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The content policy over a document's text: (owner, texts) -> None, raising to refuse the upload
# (the app passes the content policy's screen: ContentFiltered, 400 `content_filter`).
Screen = Callable[[str, Sequence[str]], None]


@dataclass(frozen=True)
class Hit:
    chunk: StoredChunk
    rank: int  # from 1


class DocumentService:
    def __init__(
        self,
        store: DocumentStore,
        *,
        limits: Limits,
        quota_bytes: int,
        embedder: Embedder | None = None,
        segmenter: Segmenter | None = None,
        screen: Screen | None = None,
    ) -> None:
        self.screen = screen  # called in a worker thread with the name and text, before any indexing
        self.store = store
        self.limits = limits
        self.quota_bytes = quota_bytes
        self.embedder = embedder
        self.segmenter = segmenter or Segmenter()

    async def add(self, owner: str, name: str, data: bytes) -> Added:
        """Store `data` for `owner`, or return the file they already have with the same bytes.
        Raises a DocumentError for a file that cannot be taken; nothing is stored then."""
        sha256 = hashlib.sha256(data).hexdigest()
        existing = await asyncio.to_thread(self.store.find_by_sha256, owner, sha256)
        if existing is not None:
            return Added(existing, duplicate=True)
        if self.quota_bytes and await asyncio.to_thread(self.store.used_bytes, owner) + len(data) > self.quota_bytes:
            raise StorageQuotaExceeded(self._quota_message())
        extracted, chunks = await asyncio.to_thread(self._prepare, data)
        if self.screen is not None:  # refused: nothing embedded, nothing stored
            await asyncio.to_thread(self.screen, owner, [clean_name(name), extracted.text])
        vectors: list[list[float]] | None = None
        if self.embedder is not None and chunks:
            vectors = await embed_passages(self.embedder, [c.text for c in chunks], owner)
        new_chunks = await asyncio.to_thread(self._index, chunks, vectors)
        new = NewFile(
            name=clean_name(name),
            kind=extracted.kind,
            sha256=sha256,
            data=data,
            pages=len(extracted.pages),
            chars=extracted.chars,
            embedding_model=self.embedder.info.name if vectors is not None and self.embedder else None,
        )
        try:
            return await asyncio.to_thread(self.store.add, owner, new, new_chunks, self.quota_bytes)
        except QuotaExceeded as exc:
            raise StorageQuotaExceeded(str(exc)) from exc

    def _quota_message(self) -> str:
        return f"Your storage quota for files is {self.quota_bytes:,} bytes; delete some files first."

    def _prepare(self, data: bytes) -> tuple[Extracted, list[Chunk]]:
        extracted = extract(data, self.limits)
        return extracted, chunk_pages(extracted.pages)

    def _index(self, chunks: list[Chunk], vectors: list[list[float]] | None) -> list[NewChunk]:
        rows = []
        for i, chunk in enumerate(chunks):
            terms = self.segmenter.terms(chunk.text)
            vector = ranking.to_blob(vectors[i]) if vectors is not None else None
            rows.append(
                NewChunk(
                    chunk.ordinal, chunk.page, chunk.start, chunk.end, chunk.text, Counter(terms), len(terms), vector
                )
            )
        return rows

    async def files(self, owner: str) -> list[DocumentFile]:
        return await asyncio.to_thread(self.store.list_files, owner)

    async def get(self, owner: str, file_id: str) -> DocumentFile:
        return await asyncio.to_thread(self.store.get, owner, file_id)

    async def content(self, owner: str, file_id: str) -> tuple[DocumentFile, bytes]:
        return await asyncio.to_thread(self.store.content, owner, file_id)

    async def delete(self, owner: str, file_id: str) -> None:
        await asyncio.to_thread(self.store.delete, owner, file_id)

    async def chunks(self, owner: str, file_ids: Sequence[str]) -> list[StoredChunk]:
        return await asyncio.to_thread(self.store.chunks, owner, file_ids)

    async def search(
        self, owner: str, query: str, *, limit: int = 5, file_ids: Sequence[str] | None = None, mode: str = "hybrid"
    ) -> list[Hit]:
        """The owner's best passages for `query` (of `file_ids`, or of all their files)."""
        rankings: list[list[int]] = []
        if mode in ("hybrid", "bm25"):
            rankings.append(await asyncio.to_thread(self._bm25, owner, query, file_ids))
        if mode in ("hybrid", "vector") and self.embedder is not None:
            rankings.append(await self._nearest(owner, query, file_ids))
        ids = ranking.fuse(rankings, limit)
        found = {c.id: c for c in await asyncio.to_thread(self.store.chunks, owner, None, ids)} if ids else {}
        return [Hit(found[i], rank) for rank, i in enumerate((i for i in ids if i in found), start=1)]

    def _bm25(self, owner: str, query: str, file_ids: Sequence[str] | None) -> list[int]:
        frequency = self.store.term_frequencies(owner, self.segmenter.terms(query), file_ids)
        if not frequency:
            return []
        n_chunks, mean_length = self.store.corpus_stats(owner, file_ids)
        weights = {term: ranking.idf(df, n_chunks) for term, df in frequency.items()}
        return self.store.bm25_top(owner, weights, mean_length, CANDIDATES, file_ids, k1=ranking.K1, b=ranking.B)

    async def _nearest(self, owner: str, query: str, file_ids: Sequence[str] | None) -> list[int]:
        """The owner's chunks closest to the query's vector: ranked in the database where it can
        (SQLite with sqlite-vec), else here over the owner's vectors (numpy)."""
        assert self.embedder is not None
        model = self.embedder.info.name
        vector = await embed_query(self.embedder, query, owner)
        found = await asyncio.to_thread(self.store.nearest, owner, model, ranking.to_blob(vector), CANDIDATES, file_ids)
        if found is not None:
            return found
        ids, blobs = await asyncio.to_thread(self.store.vectors, owner, model, file_ids)
        return await asyncio.to_thread(ranking.nearest, ids, blobs, vector, CANDIDATES)


def clean_name(name: str) -> str:
    """A file name to show: its last path component, without control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = _CONTROL.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return (name or "file")[:255]


def document_service(
    db: Database, settings: Settings, embedder: Embedder | None, screen: Screen | None = None
) -> DocumentService:
    """The service over `db` with the limits and quota `settings` give (and the content policy's `screen`)."""
    limits = Limits(max_bytes=settings.max_file_mb << 20, max_pages=settings.max_file_pages)
    return DocumentService(
        DocumentStore(db),
        limits=limits,
        quota_bytes=settings.file_storage_mb << 20,
        embedder=embedder,
        segmenter=Segmenter(settings.cache_dir),
        screen=screen,
    )
