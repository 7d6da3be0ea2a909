"""Write validated conversations in one transaction, keeping their ids when free, else giving fresh ones."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import Conversation, Message, new_id
from mingyan.store.transfer.citations import SKIPPED, write_citations

ID_QUERY_CHUNK = 500  # ids per `IN (...)`: well under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote.

    conversation_ids: the new conversations' ids, in file order.
    message_count: messages written.
    remapped: conversations given fresh ids because an id of theirs was already taken.
    skipped: what the file held that mingyan does not keep (ChatGPT tool messages, image parts, ...).
    """

    conversation_ids: list[str]
    message_count: int
    remapped: int
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversationRecord:
    """One validated conversation, ready to write.

    row: every Conversation column but `owner`. messages: every Message column but `conversation_id`,
    parents before children. citations: the citations of its messages, by message id
    (store/transfer/citations.py).
    """

    row: dict[str, Any]
    messages: list[dict[str, Any]]
    citations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def ids(self) -> Iterator[str]:
        yield self.row["id"]
        yield from (m["id"] for m in self.messages)


def write_conversations(
    store: ConversationStore,
    owner: str,
    records: Sequence[ConversationRecord],
    *,
    keep_ids: bool,
    skipped: dict[str, int] | None = None,
) -> ImportResult:
    """Insert `records` for `owner`, all or nothing.

    keep_ids=True keeps a conversation's ids unless one of them (its own or a message's) already
    exists, for any owner; then the conversation and its messages all get fresh ids. keep_ids=False
    gives every conversation fresh ids. Existing rows are never read beyond their ids, nor changed.
    """
    conversation_ids: list[str] = []
    remapped = message_count = 0
    skipped = dict(skipped or {})
    with store.sessions.begin() as session:
        taken = taken_ids(session, records) if keep_ids else set()
        leaves: list[dict[str, str]] = []
        for record in records:
            if not keep_ids or any(i in taken for i in record.ids()):
                record = with_fresh_ids(record)
                remapped += keep_ids
            _insert(session, owner, record)
            if left_out := write_citations(session, owner, record.citations):
                skipped[SKIPPED] = skipped.get(SKIPPED, 0) + left_out
            conversation_ids.append(record.row["id"])
            message_count += len(record.messages)
            if record.row["current_leaf_id"] is not None:
                leaves.append({"b_id": record.row["id"], "b_leaf": record.row["current_leaf_id"]})
        if leaves:
            table = _table(Conversation)
            session.execute(
                update(table).where(table.c.id == bindparam("b_id")).values(current_leaf_id=bindparam("b_leaf")),
                leaves,
            )
    return ImportResult(conversation_ids, message_count, remapped, skipped)


def taken_ids(session: Session, records: Sequence[ConversationRecord]) -> set[str]:
    """Which of the records' ids already exist in the database, whoever owns them."""
    conversation_ids = [r.row["id"] for r in records]
    message_ids = [m["id"] for r in records for m in r.messages]
    return _existing(session, Conversation.id, conversation_ids) | _existing(session, Message.id, message_ids)


def with_fresh_ids(record: ConversationRecord) -> ConversationRecord:
    """The same conversation under new ids, parent_id and current_leaf_id following."""
    fresh = {m["id"]: new_id() for m in record.messages}
    messages = [
        {**m, "id": fresh[m["id"]], "parent_id": fresh.get(m["parent_id"]) if m["parent_id"] else None}
        for m in record.messages
    ]
    leaf = record.row["current_leaf_id"]
    row = {**record.row, "id": new_id(), "current_leaf_id": fresh[leaf] if leaf else None}
    citations = {fresh[message_id]: rows for message_id, rows in record.citations.items()}
    return replace(record, row=row, messages=messages, citations=citations)


def _insert(session: Session, owner: str, record: ConversationRecord) -> None:
    # The current leaf is set once every message exists (the foreign key points into messages).
    session.execute(insert(_table(Conversation)), [{**record.row, "owner": owner, "current_leaf_id": None}])
    if record.messages:
        conversation_id = record.row["id"]
        rows = [{**m, "conversation_id": conversation_id} for m in record.messages]
        session.execute(insert(_table(Message)), rows)  # parents first: each parent exists in time


def _table(mapped: type[Conversation | Message]) -> Table:
    """The Core table of a mapped class (its `__table__` is declared as a mere FromClause)."""
    assert isinstance(mapped.__table__, Table)
    return mapped.__table__


def _existing(session: Session, column: Any, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids, ID_QUERY_CHUNK):
        found.update(session.scalars(select(column).where(column.in_(chunk))))
    return found


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
