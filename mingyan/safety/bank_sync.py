"""Keyword-bank edits stored in the database, applied to this process's moderator: all of them at
startup, then any newer one another process stored (several `mingyan serve` processes on one
database), found by a cheap check of the newest stored version's id (the app polls `refresh`).

Every stored version has an increasing id; a bank is only ever replaced by a version with a higher
id than the one it holds, under one lock, so an edit made here is never undone by a poll that read
the database just before it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from mingyan.safety.moderator import Moderator
from mingyan.store.keyword_banks import BankStore

log = logging.getLogger(__name__)


class BankSync:
    def __init__(self, moderator: Moderator, store: BankStore) -> None:
        self.moderator = moderator
        self.store = store
        self.seen = 0  # the newest stored id looked at
        self._applied: dict[str, int] = {}  # category -> id of the stored version in force here
        self._lock = threading.Lock()

    def apply(self, category: str, row_id: int, phrases: Sequence[str], version: str) -> bool:
        """Put the stored version `row_id` of `category` in force, unless a newer one already is."""
        with self._lock:
            current = self.moderator.banks.get(category)
            if current is None or row_id <= self._applied.get(category, 0):
                return False
            self.moderator.replace_bank(current.edited(list(phrases), version))
            self._applied[category] = row_id
            return True

    def load(self) -> int:
        """Apply the newest stored version of every edited bank; how many banks changed."""
        changed = 0
        for category, row in self.store.latest().items():
            changed += self.apply(category, row.id, row.phrases, row.version)
            self.seen = max(self.seen, row.id)
        return changed

    def refresh(self) -> int:
        """Apply what was stored since the last look (one indexed `max(id)` query when nothing was)."""
        newest = self.store.newest_id()
        if newest is None or newest <= self.seen:
            return 0
        changed = self.load()
        if changed:
            log.info("keyword banks: %d changed in another process, applied", changed)
        return changed
