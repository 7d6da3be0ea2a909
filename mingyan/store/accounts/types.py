"""What the account stores return: frozen snapshots that carry no password hash and no key digest.

Times are timezone-aware UTC on every database (SQLite hands back naive ones; they are UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, overload

from mingyan.store import tables as t

LIMITS = ("requests_per_minute", "tokens_per_day", "concurrent_streams")


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """`value` in UTC; a naive time (SQLite's) is taken to be UTC already."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, row: t.User) -> User:
        return cls(
            id=row.id,
            username=row.username,
            role=row.role,
            disabled=row.disabled,
            created_at=aware(row.created_at),
            updated_at=aware(row.updated_at),
            password_changed_at=aware(row.password_changed_at),
        )


@dataclass(frozen=True)
class LoginSession:
    id: str  # sha256 hex of the session token (the token itself is nowhere)
    user_id: str
    csrf_hash: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None

    @classmethod
    def of(cls, row: t.LoginSession) -> LoginSession:
        return cls(
            id=row.id,
            user_id=row.user_id,
            csrf_hash=row.csrf_hash,
            created_at=aware(row.created_at),
            expires_at=aware(row.expires_at),
            last_seen_at=aware(row.last_seen_at),
            ip=row.ip,
            user_agent=row.user_agent,
        )


@dataclass(frozen=True)
class Quota:
    """Limits; None means no limit in an effective quota, and "the default" in a stored override."""

    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    concurrent_streams: int | None = None

    def over(self, defaults: Quota) -> Quota:
        """These values where set, `defaults` elsewhere."""
        return Quota(
            **{name: getattr(defaults, name) if getattr(self, name) is None else getattr(self, name) for name in LIMITS}
        )

    def narrowed_by(self, other: Quota) -> Quota:
        """The smaller of the two limits, for each limit `other` sets."""
        values = {}
        for name in LIMITS:
            mine, theirs = getattr(self, name), getattr(other, name)
            values[name] = mine if theirs is None else theirs if mine is None else min(mine, theirs)
        return Quota(**values)

    @classmethod
    def of(cls, row: t.Quota | t.ApiKey | None) -> Quota:
        return cls() if row is None else cls(**{name: getattr(row, name) for name in LIMITS})


@dataclass(frozen=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    prefix: str  # the key's first 12 characters, for telling keys apart in a list
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    limits: Quota = field(default_factory=Quota)  # narrower limits for this key; None: the user's

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def of(cls, row: t.ApiKey) -> ApiKey:
        return cls(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            prefix=row.prefix,
            created_at=aware(row.created_at),
            last_used_at=aware(row.last_used_at),
            revoked_at=aware(row.revoked_at),
            limits=Quota.of(row),
        )


@dataclass(frozen=True)
class UsageTotal:
    """One user's usage. `user_id` is None once the user is deleted; `username` is the name they had."""

    user_id: str | None
    username: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: str | None
    actor_name: str
    event: str
    target: str
    ip: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, row: t.AuditEvent) -> AuditEntry:
        values = {f.name: getattr(row, f.name) for f in fields(cls)}
        return replace(cls(**values), at=aware(row.at), details=dict(row.details or {}))
