"""Errors the store raises."""

from __future__ import annotations

from mingyan.errors import MingyanError


class NotFound(MingyanError):
    """No such object for this owner (another owner's object reads the same: existence never leaks)."""


class ImportFormatError(MingyanError, ValueError):
    """An import file is not what it claims to be; the message says where (`conversations[0].title: ...`)."""
