"""Which conversations a retention limit has expired: those not updated since a moment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import Conversation


def expired_conversations(store: ConversationStore, before: datetime, limit: int = 500) -> list[tuple[str, str]]:
    """(owner, conversation id) of up to `limit` conversations last updated before `before`, oldest first."""
    query = (
        select(Conversation.owner, Conversation.id)
        .where(Conversation.updated_at < before)
        .order_by(Conversation.updated_at)
        .limit(limit)
    )
    with store.db.reads() as session:
        return [(owner, cid) for owner, cid in session.execute(query)]
