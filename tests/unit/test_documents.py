"""Documents without a database: sniffing, extraction with pages and limits, chunking, terms, ranking."""

from __future__ import annotations

import pytest

from mingyan.documents import ranking
from mingyan.documents.chunking import chunk_pages, estimate_tokens
from mingyan.documents.errors import (
    ArchiveBomb,
    FileTooLarge,
    MalformedDocument,
    TooManyPages,
    TooMuchText,
    UnsupportedType,
)
from mingyan.documents.extract import extract
from mingyan.documents.limits import Limits
from mingyan.documents.pages import Page
from mingyan.documents.sniff import sniff
from mingyan.documents.terms import Segmenter
from tests.doc_files import make_blank_pdf, make_docx, make_pdf, many_entries_docx, zip_bomb_docx

LIMITS = Limits()


def test_the_type_comes_from_the_content() -> None:
    assert sniff(make_pdf(["一页"])) == "pdf"
    assert sniff(make_docx([["Hello"]])) == "docx"
    assert sniff(b"<!DOCTYPE html><html><body><p>hi</p></body></html>") == "html"
    assert sniff("name,city\n张三,北京\n李四,上海\n".encode()) == "csv"
    assert sniff("# 标题\n\n- 一\n- 二\n".encode()) == "md"
    assert sniff("床前明月光，疑是地上霜。".encode()) == "txt"
    assert sniff("中文 GB18030 文本".encode("gb18030")) == "txt"
    for binary in (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"PK\x03\x04garbage", b"\x00\x01\x02"):
        with pytest.raises(UnsupportedType):
            sniff(binary)


def test_a_chinese_pdf_is_read_back_page_by_page() -> None:
    data = make_pdf(["第一页：床前明月光，疑是地上霜。", "第二页：举头望明月，低头思故乡。"])
    extracted = extract(data, LIMITS)
    assert extracted.kind == "pdf"
    assert [p.number for p in extracted.pages] == [1, 2]
    assert "疑是地上霜" in extracted.pages[0].text and "低头思故乡" in extracted.pages[1].text


def test_a_docx_is_read_with_pages_at_its_page_breaks() -> None:
    extracted = extract(make_docx([["Alpha page.", "More alpha."], ["Beta page."]]), LIMITS)
    assert extracted.kind == "docx"
    assert [p.text for p in extracted.pages] == ["Alpha page.\nMore alpha.", "Beta page."]


def test_html_text_leaves_scripts_out() -> None:
    html = b"<html><head><script>alert(1)</script></head><body><h1>Title</h1><p>Body &amp; text</p></body></html>"
    assert extract(html, LIMITS).pages[0].text == "Title\nBody & text"


@pytest.mark.parametrize(
    ("data", "limits", "error"),
    [
        (b"x" * 2048, Limits(max_bytes=1024), FileTooLarge),
        (b"%PDF-1.4\n1 0 obj <<>> garbage", LIMITS, MalformedDocument),
        (make_blank_pdf(30), Limits(max_pages=20), TooManyPages),
        ("很长的文本。".encode() * 500, Limits(max_chars=1000), TooMuchText),
        (many_entries_docx(60), Limits(max_zip_entries=50), ArchiveBomb),
    ],
)
def test_each_limit_has_its_error(data: bytes, limits: Limits, error: type) -> None:
    with pytest.raises(error):
        extract(data, limits)


def test_a_docx_zip_bomb_is_refused_before_python_docx_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import docx

    bomb = zip_bomb_docx(8)
    opened = []
    monkeypatch.setattr(docx, "Document", lambda *a: opened.append(a))
    with pytest.raises(ArchiveBomb, match="expands"):
        extract(bomb, LIMITS)
    with pytest.raises(ArchiveBomb, match="expand to"):
        extract(bomb, Limits(max_zip_bytes=4 << 20))
    assert opened == []


def test_chunks_follow_sentences_overlap_and_keep_offsets() -> None:
    sentence = "长江是中国最长的河流。"
    page = Page(3, sentence * 80 + " The Yangtze is long. " * 30)
    chunks = chunk_pages([page], target=120, overlap=30)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.page == 3
        assert page.text[chunk.start : chunk.end] == chunk.text
        assert estimate_tokens(chunk.text) <= 120
        assert chunk.text.endswith(("。", ".")), chunk.text[-20:]
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))  # overlap
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_a_short_document_stays_one_chunk() -> None:
    text = "A short note. 一条短笔记。 Two sentences."
    chunks = chunk_pages([Page(1, text)])
    assert [(c.start, c.end, c.text) for c in chunks] == [(0, len(text), text)]


def test_a_sentence_longer_than_a_chunk_is_cut() -> None:
    page = Page(1, "字" * 1000)
    chunks = chunk_pages([page], target=100, overlap=20)
    assert "".join(c.text for c in chunks) == page.text
    assert max(estimate_tokens(c.text) for c in chunks) <= 125


def test_terms_segment_chinese_and_fold_english() -> None:
    terms = Segmenter().terms("举头望明月，低头思故乡。The CAFÉ opened in 2026!")
    assert "故乡" in terms and "低头" in terms
    assert {"café", "opened", "2026"} <= set(terms)
    assert "the" not in terms and "，" not in terms


def test_bm25_prefers_the_rarer_term_and_fusion_rewards_agreement() -> None:
    postings = [
        ranking.Posting(1, "common", 1, 10),
        ranking.Posting(2, "rare", 1, 10),
        ranking.Posting(2, "common", 1, 10),
    ]
    scores = ranking.bm25(postings, {"common": 2, "rare": 1}, n_chunks=10, mean_length=10)
    assert ranking.top(scores, 2) == [2, 1]
    assert ranking.fuse([[1, 2, 3], [3, 2, 1], [2]], 3)[0] == 2
    vectors = [ranking.to_blob(v) for v in ([1, 0], [0.6, 0.8], [0, 1])]
    assert ranking.nearest([7, 8, 9], vectors, [0, 1], 2) == [9, 8]
