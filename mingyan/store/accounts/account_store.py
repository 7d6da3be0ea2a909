"""The account stores of one database, built together: users (with their login sessions), API keys,
and the ledger (quotas, usage, audit log)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mingyan.store.accounts.credentials import Passwords
from mingyan.store.accounts.keys import KeyStore
from mingyan.store.accounts.ledger import Ledger
from mingyan.store.accounts.users import UserStore
from mingyan.store.db import Database
from mingyan.store.tables import utcnow


@dataclass(frozen=True)
class AccountStore:
    db: Database
    users: UserStore
    keys: KeyStore
    ledger: Ledger

    @classmethod
    def open(
        cls, db: Database, *, passwords: Passwords | None = None, clock: Callable[[], datetime] = utcnow
    ) -> AccountStore:
        """`passwords` and `clock` are injectable (tests pass cheaper argon2id parameters and a fake clock)."""
        return cls(
            db=db,
            users=UserStore(db, passwords=passwords, clock=clock),
            keys=KeyStore(db, clock=clock),
            ledger=Ledger(db, clock=clock),
        )
