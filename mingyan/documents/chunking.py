"""Sentence-aware chunks of a few hundred tokens with overlap, each within one page, keeping its
page number and character offsets in that page's text.

Sentences end at 。！？；… and at . ! ? ; followed by a space, and at blank lines. Sentences are
packed into a chunk until it would pass `target` tokens; the next chunk starts with the last
sentences of the previous one (up to `overlap` tokens). A sentence longer than `target` is cut.
A page short enough for one chunk is one chunk, so a short document stays whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mingyan.documents.pages import Page

_SENTENCE_END = re.compile(r"[。！？；…]+[”’」』）)\"']*|[.!?;]+[\"')\]]*(?=\s)|\n\s*\n")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_WORD = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    page: int
    start: int  # offsets in the page's text
    end: int
    text: str


def estimate_tokens(text: str) -> int:
    """A model-free estimate: one token per CJK character, four per three Latin words, one per
    other symbol run."""
    cjk = len(_CJK.findall(text))
    words = len(_WORD.findall(text))
    return cjk + (words * 4 + 2) // 3


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, surrounding whitespace left out."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    return [trimmed for span in spans if (trimmed := _trim(text, *span)) is not None]


def chunk_pages(pages: list[Page], target: int = 300, overlap: int = 60) -> list[Chunk]:
    chunks: list[Chunk] = []
    for page in pages:
        for start, end in _page_spans(page.text, target, overlap):
            chunks.append(Chunk(len(chunks), page.number, start, end, page.text[start:end]))
    return chunks


def _page_spans(text: str, target: int, overlap: int) -> list[tuple[int, int]]:
    pieces = [piece for span in sentences(text) for piece in _cut_long(text, span, target)]
    if not pieces:
        return []
    costs = [estimate_tokens(text[s:e]) for s, e in pieces]
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(pieces):
        last, total = first, costs[first]
        while last + 1 < len(pieces) and total + costs[last + 1] <= target:
            last += 1
            total += costs[last]
        spans.append((pieces[first][0], pieces[last][1]))
        if last + 1 >= len(pieces):
            break
        back, kept = last, 0  # the next chunk repeats the tail of this one, within `overlap`
        while back > first and kept + costs[back] <= overlap:
            kept += costs[back]
            back -= 1
        first = back + 1 if back < last else last + 1
    return spans


def _cut_long(text: str, span: tuple[int, int], target: int) -> list[tuple[int, int]]:
    """A sentence over `target` tokens as pieces of about `target` tokens (cut at spaces in Latin text)."""
    start, end = span
    if estimate_tokens(text[start:end]) <= target:
        return [span]
    pieces = []
    while start < end:
        cut = start
        while cut < end and estimate_tokens(text[start : cut + 1]) <= target:
            cut = min(end, cut + max(1, target // 4))
        space = text.rfind(" ", start + 1, cut)
        if cut < end and space > start:
            cut = space
        pieces.append((start, max(cut, start + 1)))
        start = max(cut, start + 1)
        while start < end and text[start].isspace():
            start += 1
    return pieces


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None
