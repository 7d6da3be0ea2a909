"""Reads for the exporters: an owner's conversations and their whole message trees, parents first."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from mingyan.store.errors import NotFound
from mingyan.store.tables import Conversation, Message
from mingyan.store.transfer.checks import as_utc

QUERY_CHUNK = 500  # conversation ids per `IN (...)`


def owned_conversations(session: Session, owner: str, ids: Sequence[str] | None) -> list[Conversation]:
    """The owner's conversations: all (oldest first) for None, else those ids in order, each once.

    An id that is missing or another owner's raises NotFound, the same for both.
    """
    if ids is None:
        query = select(Conversation).where(Conversation.owner == owner)
        return list(session.scalars(query.order_by(Conversation.created_at, Conversation.id)))
    found = []
    for conversation_id in dict.fromkeys(ids):
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.owner != owner:
            raise NotFound(f"No conversation {conversation_id}.")
        found.append(conversation)
    return found


def messages_by_conversation(session: Session, conversation_ids: Sequence[str]) -> dict[str, list[Message]]:
    """Every message of each conversation (all branches), unordered."""
    grouped: dict[str, list[Message]] = {}
    for start in range(0, len(conversation_ids), QUERY_CHUNK):
        chunk = list(conversation_ids[start : start + QUERY_CHUNK])
        for message in session.scalars(select(Message).where(Message.conversation_id.in_(chunk))):
            grouped.setdefault(message.conversation_id, []).append(message)
    return grouped


class _Node(Protocol):  # read-only members, so that frozen dataclasses fit too
    @property
    def id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


T = TypeVar("T", bound=_Node)


def parents_first(messages: Sequence[T]) -> list[T]:
    """Every parent before its children; among those ready, oldest (created_at, then id) first."""
    ids = {m.id for m in messages}
    children: dict[str, list[T]] = {}
    ready: list[tuple[datetime, str, T]] = []
    for m in messages:
        if m.parent_id is not None and m.parent_id in ids:
            children.setdefault(m.parent_id, []).append(m)
        else:
            ready.append((as_utc(m.created_at), m.id, m))
    heapq.heapify(ready)
    ordered: list[T] = []
    while ready:
        _, _, message = heapq.heappop(ready)
        ordered.append(message)
        for child in children.get(message.id, ()):
            heapq.heappush(ready, (as_utc(child.created_at), child.id, child))
    return ordered
