"""Live replies across every server process on one database, for administrators: the assistant
messages still `streaming` (saved recently: a process saves its running replies at least every
30 s), and the stop requests an administrator leaves for the process that generates one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from mingyan.store.db import Database
from mingyan.store.errors import NotFound
from mingyan.store.tables import Conversation, Message, ReplyStopRequest, User, utcnow

LIST_LIMIT = 500


@dataclass(frozen=True)
class LiveRow:
    """A live reply as an administrator sees it: who, where, which model, since when, how far (no text)."""

    message_id: str
    owner: str
    username: str | None  # None: no account of that id (the open server's `local` owner)
    conversation_id: str
    model: str
    started: datetime
    tokens: int  # generated so far, as last saved
    saved_at: datetime


class LiveReplyStore:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def running(self, saved_within_s: float) -> list[LiveRow]:
        """Every `streaming` reply saved in the last `saved_within_s` seconds, oldest first."""
        since = self.clock() - timedelta(seconds=saved_within_s)
        query = (
            select(Message, Conversation.owner, Conversation.model, User.username)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(User, User.id == Conversation.owner)
            .where(Message.status == "streaming", Message.role == "assistant", Message.updated_at >= since)
            .order_by(Message.created_at, Message.id)
            .limit(LIST_LIMIT)
        )
        with self.db.reads() as session:
            return [_row(*found) for found in session.execute(query)]

    def find(self, message_id: str) -> tuple[Message, str]:
        """An assistant message of any owner, with its owner; NotFound otherwise."""
        query = (
            select(Message, Conversation.owner)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id, Message.role == "assistant")
        )
        with self.db.reads() as session:
            found = session.execute(query).first()
        if found is None:
            raise NotFound(f"No reply {message_id}.")
        return found[0], found[1]

    def request_stop(self, message_id: str, requested_by: str) -> None:
        """Leave a stop request for the process generating `message_id` (a repeat keeps the first)."""
        with self.db.sessions.begin() as session:
            if session.get(ReplyStopRequest, message_id) is None:
                by, at = requested_by[:64], self.clock()
                session.add(ReplyStopRequest(message_id=message_id, requested_by=by, requested_at=at))

    def requested(self, message_ids: Sequence[str]) -> list[str]:
        """Which of `message_ids` an administrator asked to stop."""
        if not message_ids:
            return []
        query = select(ReplyStopRequest.message_id).where(ReplyStopRequest.message_id.in_(list(message_ids)))
        with self.db.reads() as session:
            return list(session.scalars(query))

    def done(self, message_ids: Sequence[str]) -> None:
        """The requests for `message_ids` were carried out (or are moot)."""
        if message_ids:
            with self.db.sessions.begin() as session:
                session.execute(delete(ReplyStopRequest).where(ReplyStopRequest.message_id.in_(list(message_ids))))

    def prune(self, older_than_s: float) -> None:
        """Drop requests older than `older_than_s` seconds (their reply ended some other way)."""
        before = self.clock() - timedelta(seconds=older_than_s)
        with self.db.sessions.begin() as session:
            session.execute(delete(ReplyStopRequest).where(ReplyStopRequest.requested_at < before))


def _row(message: Message, owner: str, model: str, username: str | None) -> LiveRow:
    return LiveRow(
        message_id=message.id,
        owner=owner,
        username=username,
        conversation_id=message.conversation_id,
        model=message.model_name or model,
        started=message.created_at,
        tokens=message.completion_tokens or 0,
        saved_at=message.updated_at,
    )
