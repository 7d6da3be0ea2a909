"""Files attached to a message: which passages go into the prompt (a document that fits goes in
whole, page by page; otherwise the passages retrieval finds for the question), and the reply's
citations: its markers checked against the passages (documents/attribution.py), the text and the
citations stored together before its `done` event."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from mingyan.chat.live import LiveReply
from mingyan.documents.attribution import attribute
from mingyan.documents.chunking import estimate_tokens
from mingyan.documents.citations import Passage, cited, prompt_block
from mingyan.documents.service import DocumentService
from mingyan.errors import InvalidRequestError
from mingyan.store.db import Database
from mingyan.store.documents import CitationRow, CitationStore, StoredChunk

MAX_FILES = 20
TOP_PASSAGES = 6


@dataclass(frozen=True)
class Attached:
    passages: list[Passage]
    whole: bool  # every attached document went in whole


class Attachments:
    def __init__(self, documents: DocumentService, citations: CitationStore) -> None:
        self.documents = documents
        self.citations = citations

    async def prepare(self, owner: str, file_ids: Sequence[str], question: str, budget_tokens: int) -> Attached:
        """The passages for `question` from the owner's files `file_ids` (NotFound for any other id)."""
        if len(file_ids) > MAX_FILES:
            raise InvalidRequestError(f"At most {MAX_FILES} files can be attached to a message.", param="file_ids")
        ids = list(dict.fromkeys(file_ids))
        for file_id in ids:
            await self.documents.get(owner, file_id)  # NotFound: another user's file reads as missing
        chunks = await self.documents.chunks(owner, ids)
        pages = _whole_pages(chunks, ids)
        if sum(estimate_tokens(p.text) for p in pages) <= budget_tokens:
            return Attached(_numbered(pages), whole=True)
        hits = await self.documents.search(owner, question, limit=TOP_PASSAGES, file_ids=ids)
        passages: list[Passage] = []
        used = 0
        for hit in hits:
            c = hit.chunk
            used += estimate_tokens(c.text)
            if passages and used > budget_tokens:
                break
            passages.append(Passage(0, c.file_id, c.file_name, c.page, c.start, c.end, c.text))
        return Attached(_numbered(passages), whole=False)

    @staticmethod
    def user_turn(question: str, attached: Attached) -> str:
        return prompt_block(question, attached.passages)

    async def record(self, reply: LiveReply, attached: Attached) -> None:
        """Check the finished reply's markers against its passages (correcting the text), then store
        the text and the passages it cites together; they go out with its `done` event."""
        final = reply.final
        if final is None:
            return
        text = final.content
        if final.status != "refused":  # a refusal cites nothing
            terms = self.documents.segmenter.terms
            text = await asyncio.to_thread(attribute, final.content, attached.passages, terms)
        rows = [
            CitationRow(p.marker, p.file_id, p.file_name, p.page, p.start, p.end, p.text)
            for p in sorted(cited(text, attached.passages), key=lambda p: p.marker)
        ]
        if rows or text != final.content:
            changed = text if text != final.content else None
            saved = await asyncio.to_thread(self.citations.add, reply.id, rows, changed)
            reply.final = saved or final
        reply.citations = rows

    async def of_messages(self, owner: str, message_ids: Sequence[str]) -> dict[str, list[CitationRow]]:
        return await asyncio.to_thread(self.citations.of_messages, owner, message_ids)


def _whole_pages(chunks: list[StoredChunk], file_ids: list[str]) -> list[Passage]:
    """Each page of the files as one passage, rebuilt from its chunks (their overlaps removed)."""
    pages: dict[tuple[str, int], Passage] = {}
    order = {file_id: i for i, file_id in enumerate(file_ids)}
    for c in sorted(chunks, key=lambda c: (order[c.file_id], c.ordinal)):
        key = (c.file_id, c.page)
        page = pages.get(key)
        if page is None:
            pages[key] = Passage(0, c.file_id, c.file_name, c.page, c.start, c.end, c.text)
            continue
        if c.end <= page.end:
            continue
        tail = c.text[max(0, page.end - c.start) :]
        gap = "\n" if c.start > page.end else ""
        pages[key] = Passage(0, c.file_id, c.file_name, c.page, page.start, c.end, page.text + gap + tail)
    return list(pages.values())


def _numbered(passages: list[Passage]) -> list[Passage]:
    return [Passage(i, p.file_id, p.file_name, p.page, p.start, p.end, p.text) for i, p in enumerate(passages, start=1)]


def attachments(db: Database, documents: DocumentService) -> Attachments:
    return Attachments(documents, CitationStore(db))
