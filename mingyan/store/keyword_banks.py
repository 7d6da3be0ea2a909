"""Administrators' versions of the keyword banks: every edit is a new row (nothing is overwritten),
and the newest version of a category replaces the bank shipped with mingyan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select

from mingyan.store.db import Database
from mingyan.store.tables import KeywordBankVersion, utcnow


class BankStore:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def add(self, category: str, phrases: list[str], author: str, *, shipped_version: str = "1") -> KeywordBankVersion:
        """A new version of `category`'s bank: `<shipped version>.<edit number>` (1.1, 1.2, ...)."""
        with self.db.sessions.begin() as session:
            count = session.scalar(
                select(func.count()).select_from(KeywordBankVersion).where(KeywordBankVersion.category == category)
            )
            row = KeywordBankVersion(
                category=category,
                version=f"{shipped_version}.{int(count or 0) + 1}",
                phrases=list(phrases),
                author=author[:64],
                created_at=self.clock(),
            )
            session.add(row)
        return row

    def latest(self) -> dict[str, KeywordBankVersion]:
        """The newest stored version of each edited category."""
        newest: dict[str, KeywordBankVersion] = {}
        with self.db.reads() as session:
            for row in session.scalars(select(KeywordBankVersion).order_by(KeywordBankVersion.id)):
                newest[row.category] = row
        return newest

    def newest_id(self) -> int | None:
        """The id of the newest stored version of any bank (None: no edit yet); a cheap check for news."""
        with self.db.reads() as session:
            return session.scalar(select(func.max(KeywordBankVersion.id)))

    def history(self, category: str) -> list[KeywordBankVersion]:
        """Every stored version of `category`, newest first."""
        query = (
            select(KeywordBankVersion)
            .where(KeywordBankVersion.category == category)
            .order_by(KeywordBankVersion.id.desc())
        )
        with self.db.reads() as session:
            return list(session.scalars(query))
