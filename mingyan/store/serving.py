"""Quota counters shared by every server process on one database: the replies running now and the
requests of the last minute, per subject (`user:ID`, `key:ID`).

A check and its insert happen in one transaction that first takes a lock per subject (PostgreSQL:
`pg_advisory_xact_lock`, held to the commit; SQLite: its one write lock), so two processes
admitting the same user at once are serialized and cannot both take the last place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from mingyan.store.db import Database
from mingyan.store.tables import ServingRequest, ServingStream, new_id

REQUEST_WINDOW_S = 60.0


class CounterView:
    """The counters of the locked subjects, inside their transaction."""

    def __init__(self, session: Session, process: str, ttl_s: float) -> None:
        self._session, self._process, self._ttl_s = session, process, ttl_s

    def streams(self, subject: str, now: float) -> int:
        query = select(func.count()).where(ServingStream.subject == subject, ServingStream.expires_at > now)
        return int(self._session.execute(query).scalar_one())

    def recent(self, subject: str, since: float) -> list[float]:
        """Times of the subject's requests since `since`, oldest first (older ones are deleted)."""
        self._session.execute(
            delete(ServingRequest).where(ServingRequest.subject == subject, ServingRequest.at <= since)
        )
        query = select(ServingRequest.at).where(ServingRequest.subject == subject).order_by(ServingRequest.at)
        return list(self._session.execute(query).scalars())

    def add(self, subjects: Sequence[str], now: float) -> list[str]:
        """One request and one running stream per subject; returns the streams' ids."""
        ids = []
        for subject in subjects:
            self._session.add(ServingRequest(subject=subject, at=now))
            stream = ServingStream(id=new_id(), subject=subject, process=self._process, expires_at=now + self._ttl_s)
            self._session.add(stream)
            ids.append(stream.id)
        return ids


class SharedCounters:
    def __init__(self, db: Database, process: str, *, ttl_s: float = 120.0) -> None:
        """`process`: this process's id (its rows); `ttl_s`: how long a stream row lives unless renewed."""
        self.db, self.process, self.ttl_s = db, process, ttl_s

    @contextmanager
    def locked(self, subjects: Sequence[str]) -> Iterator[CounterView]:
        """A write transaction holding each subject's lock (in a fixed order: no deadlock)."""
        with self.db.sessions.begin() as session:
            if self.db.dialect == "postgresql":
                for subject in sorted(set(subjects)):
                    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:s, 0))"), {"s": subject})
            yield CounterView(session, self.process, self.ttl_s)

    def release(self, ids: Sequence[str]) -> None:
        if ids:
            with self.db.sessions.begin() as session:
                session.execute(delete(ServingStream).where(ServingStream.id.in_(list(ids))))

    def renew(self, now: float) -> None:
        """Extend this process's running streams; drop every process's expired rows."""
        with self.db.sessions.begin() as session:
            session.execute(
                update(ServingStream).where(ServingStream.process == self.process).values(expires_at=now + self.ttl_s)
            )
            session.execute(delete(ServingStream).where(ServingStream.expires_at <= now))

    def forget_process(self) -> None:
        """At shutdown: this process runs nothing any more."""
        with self.db.sessions.begin() as session:
            session.execute(delete(ServingStream).where(ServingStream.process == self.process))
