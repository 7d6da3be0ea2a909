"""Quotas, usage records and the audit log.

The audit log is append-only: there is no method to change or remove an entry, and database triggers
(migration 0004) refuse UPDATE and DELETE of `audit_events` on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from mingyan.store import tables as t
from mingyan.store.accounts.rows import clip
from mingyan.store.accounts.types import (
    LIMITS,
    ApiKey,
    AuditEntry,
    Quota,
    UsageTotal,
    User,
    aware,
)
from mingyan.store.db import Database
from mingyan.store.errors import InvalidValue, NotFound
from mingyan.store.tables import utcnow

NO_LIMITS = Quota()
INT_MAX = 2**31 - 1  # the columns are 32-bit integers
AUDIT_EVENTS = (
    "login",
    "login_failed",
    "logout",
    "password_changed",
    "user_created",
    "user_disabled",
    "user_enabled",
    "user_deleted",
    "role_changed",
    "key_created",
    "key_revoked",
    "export",
    "conversation_deleted",
    "quota_changed",
)  # the events mingyan writes; `audit` takes others too (at most 64 characters)


class Ledger:
    """Quotas, usage and the audit log, for one database."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self._clock = clock

    def now(self) -> datetime:
        """The current time, UTC."""
        return aware(self._clock())

    # ---- quotas --------------------------------------------------------------------------------

    def get_quota(self, user_id: str, defaults: Quota = NO_LIMITS, *, key: ApiKey | None = None) -> Quota:
        """The limits in force: the user's overrides over `defaults` (the server's), narrowed by the
        limits of `key` (an ApiKey) when the request came with one. None means no limit."""
        with self.db.reads() as session:
            effective = Quota.of(session.get(t.Quota, user_id)).over(defaults)
        return effective if key is None else effective.narrowed_by(key.limits)

    def get_quota_overrides(self, user_id: str) -> Quota:
        """What is stored for the user (None: the server's default)."""
        with self.db.reads() as session:
            if session.get(t.User, user_id) is None:
                raise NotFound(f"No user {user_id}.")
            return Quota.of(session.get(t.Quota, user_id))

    def set_quota(self, user_id: str, **values: int | None) -> Quota:
        """Set some of requests_per_minute, tokens_per_day, concurrent_streams (None: back to the
        default); the others keep their value. Returns the stored overrides."""
        values = check_limits(values)
        with self.db.sessions.begin() as session:
            if session.get(t.User, user_id) is None:
                raise NotFound(f"No user {user_id}.")
            row = session.get(t.Quota, user_id)
            if row is None:
                row = t.Quota(user_id=user_id)
                session.add(row)
            for name, value in values.items():
                setattr(row, name, value)
        return Quota.of(row)

    # ---- usage ---------------------------------------------------------------------------------

    def record_usage(
        self,
        user_id: str | None,
        *,
        route: str,
        model: str = "",
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        api_key_id: str | None = None,
    ) -> None:
        """One served request. The username is copied in, so totals outlive the user."""
        counts = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached_tokens": cached_tokens,
        }
        for name, value in counts.items():
            _check_count(name, value, maximum=INT_MAX)
        with self.db.sessions.begin() as session:
            user = session.get(t.User, user_id) if user_id is not None else None
            if user is None:  # anonymous, or deleted while the request ran (its keys went with it)
                user_id = api_key_id = None
            session.add(
                t.UsageRecord(
                    user_id=user_id,
                    username=user.username if user else "",
                    api_key_id=api_key_id,
                    route=clip(route, 64) or "",
                    model=clip(model, 200) or "",
                    created_at=self.now(),
                    **counts,
                )
            )

    def usage_totals(self, *, user_id: str | None = None, since: datetime | None = None) -> list[UsageTotal]:
        """Requests and tokens per user (deleted users under the name they had), by name."""
        record = t.UsageRecord
        query = select(
            record.user_id,
            record.username,
            func.count(),
            *(
                func.coalesce(func.sum(column), 0)
                for column in (record.prompt_tokens, record.cached_tokens, record.completion_tokens)
            ),
        ).group_by(record.user_id, record.username)
        if user_id is not None:
            query = query.where(record.user_id == user_id)
        if since is not None:
            query = query.where(record.created_at >= aware(since))
        with self.db.reads() as session:
            totals = [UsageTotal(*(row[:2]), *(int(n) for n in row[2:])) for row in session.execute(query)]
        return sorted(totals, key=lambda u: (u.username.casefold(), u.user_id is None, u.user_id or ""))

    def tokens_used_since(self, user_id: str, since: datetime, *, api_key_id: str | None = None) -> int:
        """Prompt plus completion tokens of the user's requests since `since` (only those made with
        `api_key_id`, when given): for the daily quotas of a user and of a key."""
        record = t.UsageRecord
        query = select(func.coalesce(func.sum(record.prompt_tokens + record.completion_tokens), 0)).where(
            record.user_id == user_id, record.created_at >= aware(since)
        )
        if api_key_id is not None:
            query = query.where(record.api_key_id == api_key_id)
        with self.db.reads() as session:
            return int(session.scalar(query) or 0)

    # ---- audit log -----------------------------------------------------------------------------

    def audit(
        self,
        event: str,
        *,
        actor: User | str | None = None,
        target: str = "",
        ip: str | None = None,
        **details: Any,
    ) -> AuditEntry:
        """Append an entry. `actor` is the acting User, or a name such as "cli"; `details` must be JSON."""
        if not isinstance(event, str) or not 0 < len(event) <= 64:
            raise InvalidValue("an audit event is named in 1 to 64 characters", param="event")
        if isinstance(actor, User):
            actor_id, actor_name = actor.id, actor.username
        else:
            actor_id, actor_name = None, actor or ""
        row = t.AuditEvent(
            at=self.now(),
            actor_id=actor_id,
            actor_name=clip(actor_name, 64),
            event=event,
            target=clip(target, 200) or "",
            ip=clip(ip, 64),
            details=details,
        )
        with self.db.sessions.begin() as session:
            session.add(row)
        return AuditEntry.of(row)

    def audit_events(self, limit: int = 50, offset: int = 0, event: str | None = None) -> list[AuditEntry]:
        """Entries newest first, optionally only one kind of event."""
        query = select(t.AuditEvent).order_by(t.AuditEvent.id.desc()).limit(limit).offset(offset)
        if event is not None:
            query = query.where(t.AuditEvent.event == event)
        with self.db.reads() as session:
            return [AuditEntry.of(row) for row in session.scalars(query)]


def check_limits(values: dict[str, Any]) -> dict[str, int | None]:
    """Limits by name: each None (the default) or a whole number from 0 to 2**31 - 1."""
    unknown = set(values) - set(LIMITS)
    if unknown:
        raise TypeError(f"unknown limits: {', '.join(sorted(unknown))}")
    for name, value in values.items():
        if value is not None:
            _check_count(name, value, maximum=INT_MAX)
    return dict(values)


def _check_count(name: str, value: Any, *, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValue(f"{name} must be a whole number, 0 or more", param=name)
    if value > maximum:
        raise InvalidValue(f"{name} must be at most {maximum}", param=name)
