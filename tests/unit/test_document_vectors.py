"""Vector search in the database (real SQLite and PostgreSQL): on SQLite, sqlite-vec ranks one
owner's chunk vectors inside the database, and its top-k agree with the portable numpy ranking;
on PostgreSQL (no pgvector here) the store says so and the numpy path is used."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mingyan.documents import ranking
from mingyan.store.conversations import ConversationStore
from mingyan.store.documents import DocumentStore, NewChunk, NewFile

DIMENSIONS = 64
MODEL = "test-embedder"


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def add_file(documents: DocumentStore, owner: str, name: str, vectors: np.ndarray, model: str = MODEL) -> str:
    chunks = [
        NewChunk(i, 1, 0, 5, f"chunk {i}", {"chunk": 1}, 1, ranking.to_blob(v.tolist())) for i, v in enumerate(vectors)
    ]
    new = NewFile(name, "txt", hashlib.sha256(f"{owner}{name}".encode()).hexdigest(), name.encode(), 1, 5, model)
    return documents.add(owner, new, chunks, 0).file.id


@pytest.fixture
def library(store: ConversationStore) -> tuple[DocumentStore, list[str], np.random.Generator]:
    rng = np.random.default_rng(11)
    documents = DocumentStore(store.db)
    files = [add_file(documents, "alice", f"a{i}.txt", unit_vectors(rng, 100)) for i in range(3)]
    add_file(documents, "bob", "b.txt", unit_vectors(rng, 100))  # another owner's: never found for alice
    add_file(documents, "alice", "other-model.txt", unit_vectors(rng, 50), model="another-model")
    return documents, files, rng


def numpy_top(documents: DocumentStore, query: np.ndarray, k: int, file_ids: list[str] | None = None) -> list[int]:
    ids, blobs = documents.vectors("alice", MODEL, file_ids)
    return ranking.nearest(ids, blobs, query.tolist(), k)


def test_the_database_ranks_vectors_as_numpy_does(library) -> None:
    documents, files, rng = library
    if documents.db.dialect != "sqlite":
        assert not documents.vectors_in_sql()
        assert documents.vector_search() == "numpy"  # the PostgreSQL 15 fixture has no pgvector
        assert documents.nearest("alice", MODEL, b"\0" * 4 * DIMENSIONS, 5) is None
        return
    assert documents.vectors_in_sql()  # sqlite-vec is loaded into every SQLite connection
    assert documents.vector_search() == "sqlite-vec"
    alice = set(documents.vectors("alice", MODEL)[0])
    for query in unit_vectors(rng, 20):
        found = documents.nearest("alice", MODEL, ranking.to_blob(query.tolist()), 10)
        assert found == numpy_top(documents, query, 10)
        assert set(found) <= alice  # only alice's chunks, made by the same model
        some = documents.nearest("alice", MODEL, ranking.to_blob(query.tolist()), 5, files[:1])
        assert some == numpy_top(documents, query, 5, files[:1])


def test_an_owner_without_vectors_gets_none(library) -> None:
    documents, _, rng = library
    query = ranking.to_blob(unit_vectors(rng, 1)[0].tolist())
    assert documents.nearest("carol", MODEL, query, 5) in ([], None)
    assert documents.nearest("alice", "no-such-model", query, 5) in ([], None)
