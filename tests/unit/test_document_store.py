"""Documents in the database (real SQLite and PostgreSQL): all-or-nothing ingestion, de-duplication,
quotas, owner checks, deletion of every row, and BM25 retrieval without an embedding model."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, true

from mingyan.documents import ranking
from mingyan.documents.errors import MalformedDocument, StorageQuotaExceeded
from mingyan.documents.limits import Limits
from mingyan.documents.service import DocumentService, clean_name
from mingyan.store.conversations import ConversationStore
from mingyan.store.documents import DocumentStore, NewChunk, NewFile
from mingyan.store.errors import NotFound
from mingyan.store.tables import DocumentBlob, DocumentChunk, DocumentFile, DocumentTerm
from tests.doc_files import make_docx, make_pdf

POEM = ["静夜思\n床前明月光，疑是地上霜。", "举头望明月，低头思故乡。", "长江是中国最长的河流，全长约六千三百公里。"]
TABLES = (DocumentFile, DocumentBlob, DocumentChunk, DocumentTerm)


def counts(documents: DocumentStore) -> dict[str, int]:
    with documents.db.reads() as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


@pytest.fixture
def service(store: ConversationStore) -> DocumentService:
    return DocumentService(DocumentStore(store.db), limits=Limits(max_pages=50), quota_bytes=0)


def test_a_pdf_is_stored_searched_and_deleted(service: DocumentService) -> None:
    added = asyncio.run(service.add("alice", "../../诗.pdf", make_pdf(POEM)))
    file = added.file
    assert not added.duplicate
    assert (file.name, file.kind, file.pages, file.owner) == ("诗.pdf", "pdf", 3, "alice")
    hits = asyncio.run(service.search("alice", "故乡"))
    assert "低头思故乡" in hits[0].chunk.text and hits[0].chunk.page == 2
    english = asyncio.run(service.add("alice", "notes.docx", make_docx([["The vault code is 4471."], ["Page two."]])))
    hits = asyncio.run(service.search("alice", "What is the VAULT code?"))
    assert hits[0].chunk.file_id == english.file.id and "4471" in hits[0].chunk.text
    assert asyncio.run(service.search("alice", "故乡", file_ids=[english.file.id])) == []
    stored, data = asyncio.run(service.content("alice", file.id))
    assert data == make_pdf(POEM) and stored.sha256 == file.sha256
    before = counts(service.store)
    asyncio.run(service.delete("alice", file.id))
    after = counts(service.store)
    assert after["document_files"] == before["document_files"] - 1 == 1
    assert after["document_chunks"] < before["document_chunks"] and after["document_terms"] < before["document_terms"]
    assert [h.chunk.file_id for h in asyncio.run(service.search("alice", "故乡"))] == []


def test_the_same_bytes_are_stored_once_per_user(service: DocumentService) -> None:
    data = make_docx([["Dedup me."]])
    first = asyncio.run(service.add("alice", "a.docx", data))
    again = asyncio.run(service.add("alice", "b.docx", data))
    other = asyncio.run(service.add("bob", "a.docx", data))
    assert again.duplicate and again.file.id == first.file.id
    assert not other.duplicate and other.file.id != first.file.id
    assert counts(service.store)["document_files"] == 2


def test_another_owner_sees_nothing(service: DocumentService) -> None:
    file = asyncio.run(service.add("alice", "poem.pdf", make_pdf(POEM))).file
    for call in (service.get, service.content, service.delete):
        with pytest.raises(NotFound):
            asyncio.run(call("bob", file.id))
    assert asyncio.run(service.files("bob")) == []
    assert asyncio.run(service.search("bob", "故乡")) == []
    assert asyncio.run(service.search("bob", "故乡", file_ids=[file.id])) == []
    assert asyncio.run(service.chunks("bob", [file.id])) == []


def test_the_storage_quota_counts_every_file(store: ConversationStore) -> None:
    first, second = make_docx([["One."]]), make_docx([["Two, longer."]])
    service = DocumentService(DocumentStore(store.db), limits=Limits(), quota_bytes=len(first) + len(second) - 1)
    asyncio.run(service.add("alice", "one.docx", first))
    before = counts(service.store)
    with pytest.raises(StorageQuotaExceeded):
        asyncio.run(service.add("alice", "two.docx", second))
    assert counts(service.store) == before
    asyncio.run(service.add("bob", "two.docx", second))  # a quota per user


def test_a_refused_or_failing_file_leaves_nothing(service: DocumentService) -> None:
    with pytest.raises(MalformedDocument):
        asyncio.run(service.add("alice", "bad.pdf", b"%PDF-1.7\n%broken"))
    assert set(counts(service.store).values()) == {0}
    # A failure in the middle of the write (a chunk the database refuses) rolls everything back.
    new = NewFile("x.txt", "txt", "0" * 64, b"x", 1, 1, None)
    good = NewChunk(0, 1, 0, 1, "x", {"x": 1}, 1)
    bad = NewChunk(1, 1, 0, 1, None, {"y": 1}, 1)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="(?i)null|integrity"):
        service.store.add("alice", new, [good, bad], 0)
    assert set(counts(service.store).values()) == {0}


def test_file_names_are_cleaned() -> None:
    assert clean_name("C:\\Users\\me\\报告.pdf") == "报告.pdf"
    assert clean_name("a/b/\x00evil\n.txt") == "evil.txt"
    assert clean_name("") == "file"


def test_bm25_ranked_in_the_database_equals_the_python_reference(service: DocumentService) -> None:
    gold = json.loads((Path(__file__).parent.parent / "fixtures" / "documents_gold.json").read_text("utf-8"))
    ids = {}
    for doc in gold["documents"]:
        ids[doc["id"]] = asyncio.run(service.add("alice", doc["name"] + ".txt", doc["text"].encode())).file.id
        asyncio.run(service.add("bob", doc["name"] + ".txt", doc["text"].encode()))  # never counted for alice
    some = [ids[d["id"]] for d in gold["documents"][:5]]
    store = service.store
    compared = 0
    for query in [q["query"] for q in gold["queries"]] + ["the 的 故乡 故乡"]:
        terms = service.segmenter.terms(query)
        for scope in (None, some):
            frequency = store.term_frequencies("alice", terms, scope)
            n_chunks, mean_length = store.corpus_stats("alice", scope)
            with store.db.reads() as session:
                rows = session.execute(
                    select(DocumentTerm.chunk_id, DocumentTerm.term, DocumentTerm.count, DocumentChunk.length)
                    .join(DocumentChunk, DocumentChunk.id == DocumentTerm.chunk_id)
                    .where(DocumentTerm.owner == "alice", DocumentTerm.term.in_(list(frequency)))
                    .where(DocumentChunk.file_id.in_(scope) if scope is not None else true())
                ).all()
            assert Counter(term for _, term, _, _ in rows) == frequency
            postings = [ranking.Posting(c, t, n, length) for c, t, n, length in rows]
            expected = ranking.top(ranking.bm25(postings, frequency, n_chunks, mean_length), 20)
            weights = {t: ranking.idf(df, n_chunks) for t, df in frequency.items()}
            found = store.bm25_top("alice", weights, mean_length, 20, scope, k1=ranking.K1, b=ranking.B)
            assert found == expected, query
            compared += bool(expected)
    assert compared > len(gold["queries"])  # most queries find something, in both scopes
