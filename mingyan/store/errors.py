"""Errors the store raises."""

from __future__ import annotations

from mingyan.errors import MingyanError


class NotFound(MingyanError):
    """No such object for this owner (another owner's object reads the same: existence never leaks)."""
