"""Keyword-bank edits stored in the database, applied to this process's moderator: all of them at
startup, then any newer one another process stored (several `mingyan serve` processes on one
database), found by a cheap check of the newest stored version's id (the app polls `refresh`)."""

from __future__ import annotations

import logging

from mingyan.safety.moderator import Moderator
from mingyan.store.keyword_banks import BankStore

log = logging.getLogger(__name__)


class BankSync:
    def __init__(self, moderator: Moderator, store: BankStore) -> None:
        self.moderator = moderator
        self.store = store
        self.seen = 0  # id of the newest stored version applied here (0: none yet)

    def load(self) -> int:
        """Apply the newest stored version of every edited bank; how many banks changed."""
        newest = self.store.latest()
        changed = 0
        for category, row in newest.items():
            current = self.moderator.banks.get(category)
            if current is None:
                continue
            if current.version != row.version or current.phrases != tuple(row.phrases):
                self.moderator.replace_bank(current.edited(row.phrases, row.version))
                changed += 1
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
