"""Citations in mingyan's JSON export: each cited reply carries `citations`, the passages its markers
name (marker, file id and name, page, character offsets, the passage's text), in marker order.

On import a citation is kept when its file is one of the importing user's files (the same account,
or a restored backup of it); a citation of a file they do not have is left out and counted in the
import's `skipped` (`citations_of_missing_files`): a conversation never points at another user's file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mingyan.store.documents import citations_of
from mingyan.store.tables import DocumentFile, MessageCitation
from mingyan.store.transfer.checks import INT32, MAX_TEXT, check_id, max_chars

ID_QUERY_CHUNK = 500  # ids per `IN (...)`
MAX_CITATIONS = 1_000  # per message
SKIPPED = "citations_of_missing_files"


class CitationEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    marker: Annotated[int, Field(ge=1, le=INT32[1])]
    file_id: Annotated[str, AfterValidator(check_id)]
    file_name: Annotated[str, AfterValidator(max_chars(255))]
    page: Annotated[int, Field(ge=0, le=INT32[1])]
    start: Annotated[int, Field(ge=0, le=INT32[1])]
    end: Annotated[int, Field(ge=0, le=INT32[1])]
    text: Annotated[str, AfterValidator(max_chars(MAX_TEXT))]


Citations = Annotated[list[CitationEntry], Field(max_length=MAX_CITATIONS)]


def exported_citations(session: Session, owner: str, message_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The citations of the owner's messages among `message_ids`, by message, as export entries."""
    found: dict[str, list[dict[str, Any]]] = {}
    for chunk in _chunks(message_ids):
        for message_id, rows in citations_of(session, owner, chunk).items():
            found[message_id] = [
                {
                    "marker": c.marker,
                    "file_id": c.file_id,
                    "file_name": c.file_name,
                    "page": c.page,
                    "start": c.start,
                    "end": c.end,
                    "text": c.text,
                }
                for c in rows
            ]
    return found


def write_citations(session: Session, owner: str, by_message: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """Insert the citations of imported messages whose file the owner has; how many were left out."""
    wanted = sorted({c["file_id"] for rows in by_message.values() for c in rows})
    owned: set[str] = set()
    for chunk in _chunks(wanted):
        query = select(DocumentFile.id).where(DocumentFile.owner == owner, DocumentFile.id.in_(chunk))
        owned.update(session.scalars(query))
    rows = [
        {
            "message_id": message_id,
            "marker": c["marker"],
            "file_id": c["file_id"],
            "page": c["page"],
            "start_offset": c["start"],
            "end_offset": c["end"],
            "text": c["text"],
        }
        for message_id, citations in by_message.items()
        for c in citations
        if c["file_id"] in owned
    ]
    if rows:
        session.execute(insert(MessageCitation), rows)
    return sum(len(c) for c in by_message.values()) - len(rows)


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), ID_QUERY_CHUNK):
        yield list(items[start : start + ID_QUERY_CHUNK])
