"""The bilingual retrieval gold set (tests/fixtures/documents_gold.json: 20 documents, 64 queries in
Chinese and English): recall@5 of hybrid search with the shipped embedding model, beside BM25 only
and embeddings only, on a real SQLite database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mingyan.bootstrap import open_embedder
from mingyan.config import Settings
from mingyan.documents.limits import Limits
from mingyan.documents.service import DocumentService
from mingyan.engine.embedding import LlamaCppEmbedder
from mingyan.store.db import Database, default_url
from mingyan.store.documents import DocumentStore
from mingyan.store.migrate import upgrade

GOLD = Path(__file__).parents[1] / "fixtures" / "documents_gold.json"


@pytest.fixture(scope="module")
def embedder() -> Iterator[LlamaCppEmbedder]:
    embedder = open_embedder(Settings(n_threads=2), progress=False)
    assert embedder is not None
    yield embedder
    embedder.close()


def recall_at_5(service: DocumentService, queries: list[dict], file_ids: dict[str, str], mode: str) -> float:
    found = 0
    for item in queries:
        hits = asyncio.run(service.search("gold", item["query"], limit=5, mode=mode))
        found += file_ids[item["document"]] in {h.chunk.file_id for h in hits}
    return found / len(queries)


def test_hybrid_recall_at_5_on_the_gold_set(tmp_path: Path, embedder: LlamaCppEmbedder) -> None:
    gold = json.loads(GOLD.read_text())
    assert len(gold["documents"]) >= 20 and len(gold["queries"]) >= 60
    url = default_url(tmp_path)
    upgrade(url)
    db = Database.open(url)
    service = DocumentService(DocumentStore(db), limits=Limits(), quota_bytes=0, embedder=embedder)
    file_ids = {}
    for doc in gold["documents"]:
        added = asyncio.run(service.add("gold", doc["name"], doc["text"].encode()))
        file_ids[doc["id"]] = added.file.id
    figures = {mode: recall_at_5(service, gold["queries"], file_ids, mode) for mode in ("hybrid", "bm25", "vector")}
    print(f"recall@5 over {len(gold['queries'])} queries: {figures}")
    poem = asyncio.run(service.search("gold", "故乡", limit=1, mode="hybrid"))
    assert "低头思故乡" in poem[0].chunk.text
    assert figures["hybrid"] >= 0.9, figures
    db.dispose()
