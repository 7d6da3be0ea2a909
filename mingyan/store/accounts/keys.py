"""API keys: created shown once and stored hashed, listed by prefix, revoked, limited, resolved.

Another user's key id raises `NotFound`, as a missing one does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mingyan.store import tables as t
from mingyan.store.accounts.credentials import (
    API_KEY_PREFIX,
    digest,
    new_api_key,
    shown_prefix,
)
from mingyan.store.accounts.ledger import check_limits
from mingyan.store.accounts.rows import TOUCH_INTERVAL, touch
from mingyan.store.accounts.types import ApiKey, User, aware
from mingyan.store.db import Database
from mingyan.store.errors import Conflict, InvalidValue, NotFound
from mingyan.store.tables import utcnow

KEY_NAME_MAX = 100
MAX_ACTIVE_KEYS = 100  # per user; revoked keys do not count


class KeyStore:
    """The API keys of every user, for one database."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    def now(self) -> datetime:
        return aware(self._clock())

    def create_key(self, user_id: str, name: str, **limits: int | None) -> tuple[ApiKey, str]:
        """A new key: returns it and its plaintext (`my-...`), which is shown once and stored hashed.

        `limits` (requests_per_minute, tokens_per_day, concurrent_streams) narrow the user's own.
        """
        name = _check_key_name(name)
        values = check_limits(limits)
        plaintext = new_api_key()
        row = t.ApiKey(
            user_id=user_id,
            name=name,
            prefix=shown_prefix(plaintext),
            key_hash=digest(plaintext),
            created_at=self.now(),
            **values,
        )
        with self.db.sessions.begin() as session:
            # The user's row is locked (PostgreSQL) so that keys made at once are counted one by one.
            locked = select(t.User.id).where(t.User.id == user_id).with_for_update()
            if not isinstance(user_id, str) or session.scalar(locked) is None:
                raise NotFound(f"No user {user_id}.")
            active = (
                select(func.count())
                .select_from(t.ApiKey)
                .where(t.ApiKey.user_id == user_id, t.ApiKey.revoked_at.is_(None))
            )
            if (session.scalar(active) or 0) >= MAX_ACTIVE_KEYS:
                raise Conflict(
                    f"An account has at most {MAX_ACTIVE_KEYS} active API keys; revoke one first.",
                    code="too_many_keys",
                )
            session.add(row)
        return ApiKey.of(row), plaintext

    def list_keys(self, user_id: str) -> list[ApiKey]:
        """The user's keys, revoked ones included, newest first."""
        with self.db.reads() as session:
            rows = session.scalars(
                select(t.ApiKey).where(t.ApiKey.user_id == user_id).order_by(t.ApiKey.created_at.desc(), t.ApiKey.id)
            )
            return [ApiKey.of(row) for row in rows]

    def revoke_key(self, user_id: str, key_id: str) -> ApiKey:
        """Revoke one of the user's keys (again: no change). Another user's key id raises NotFound."""
        with self.db.sessions.begin() as session:
            row = _key(session, user_id, key_id)
            if row.revoked_at is None:
                row.revoked_at = self.now()
        return ApiKey.of(row)

    def set_key_limits(self, user_id: str, key_id: str, **limits: int | None) -> ApiKey:
        """Change a key's own limits (None: the user's limits apply)."""
        values = check_limits(limits)
        with self.db.sessions.begin() as session:
            row = _key(session, user_id, key_id)
            for name, value in values.items():
                setattr(row, name, value)
        return ApiKey.of(row)

    def resolve_key(self, plaintext: str) -> tuple[User, ApiKey] | None:
        """The key's user and the key; None for an unknown or revoked key or a disabled user."""
        if not isinstance(plaintext, str) or not plaintext.startswith(API_KEY_PREFIX) or len(plaintext) > 200:
            return None
        key_hash = digest(plaintext)
        with self.db.reads() as session:
            found = session.execute(
                select(t.ApiKey, t.User)
                .join(t.User, t.User.id == t.ApiKey.user_id)
                .where(t.ApiKey.key_hash == key_hash)
            ).first()
        if found is None:
            return None
        key, user = ApiKey.of(found[0]), User.of(found[1])
        if not key.active or user.disabled:
            return None
        now = self.now()
        if key.last_used_at is None or now - key.last_used_at >= TOUCH_INTERVAL:
            touch(self.db, t.ApiKey, key.id, last_used_at=now)
            key = replace(key, last_used_at=now)
        return user, key


def _check_key_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidValue("an API key needs a name", param="name")
    name = name.strip()
    if len(name) > KEY_NAME_MAX or not name.isprintable():
        raise InvalidValue(f"a key name has at most {KEY_NAME_MAX} printable characters", param="name")
    return name


def _key(session: Session, user_id: str, key_id: str) -> t.ApiKey:
    row = session.get(t.ApiKey, key_id) if isinstance(key_id, str) else None
    if row is None or row.user_id != user_id:
        raise NotFound(f"No API key {key_id}.")
    return row
