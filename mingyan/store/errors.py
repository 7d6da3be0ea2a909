"""Errors the store raises."""

from __future__ import annotations

from mingyan.errors import ConflictError, InvalidRequestError, MingyanError


class NotFound(MingyanError):
    """No such object for this owner (another owner's object reads the same: existence never leaks)."""


class ImportFormatError(MingyanError, ValueError):
    """An import file is not what it claims to be; the message says where (`conversations[0].title: ...`)."""


class Conflict(ConflictError):
    """The change clashes with what is stored: a username already taken, the last admin removed."""


class AuthFailed(MingyanError):
    """A password (or other credential) did not match; the message never says which part was wrong."""


class InvalidValue(InvalidRequestError, ValueError):
    """A username, password, role, key name or limit breaks its rules; `param` names which."""


DISK_FULL_SIGNS = (
    "database or disk is full",  # SQLite (SQLITE_FULL)
    "no space left on device",  # PostgreSQL (53100 disk_full) and the OS (ENOSPC)
    # PostgreSQL refusing a new connection: a starting backend writes the relation-cache init file
    # into the database's directory, and says only this (FATAL) when that write fails for want of room.
    "could not write init file",
    "disk_full",
)


def is_disk_full(exc: BaseException) -> bool:
    """Whether a database error says its disk is full (rather than that the server went away)."""
    text = str(exc).lower()
    return any(sign in text for sign in DISK_FULL_SIGNS)
