"""Row helpers shared by the account stores."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from mingyan.store import tables as t
from mingyan.store.db import Database
from mingyan.store.errors import NotFound

TOUCH_INTERVAL = timedelta(minutes=1)  # last_seen_at / last_used_at are written at most this often


def user_row(session: Session, user_id: str) -> t.User:
    row = session.get(t.User, user_id) if isinstance(user_id, str) else None
    if row is None:
        raise NotFound(f"No user {user_id}.")
    return row


def touch(db: Database, table: type[t.LoginSession | t.ApiKey], row_id: str, **values: datetime) -> None:
    """Record when a session or key was last used (one short write)."""
    with db.sessions.begin() as session:
        session.execute(update(table).where(table.id == row_id).values(**values))


def clip(text: str | None, length: int) -> str | None:
    """Client-supplied text (an IP, a User-Agent, a typed name) cut to fit its column, without NUL
    characters (PostgreSQL cannot store them)."""
    return None if text is None else str(text).replace("\x00", "\ufffd")[:length]
