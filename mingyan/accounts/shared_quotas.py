"""The quota gate of API replicas: the same limits and messages as QuotaGate, counted in the
database (mingyan.store.serving) so that every `mingyan serve` process on one PostgreSQL sees the
others' running streams and recent requests.

A released place is deleted by a background thread (release is called from the event loop and
must not wait for the database); the same thread renews this process's running streams, so a
crashed process's places expire after the counters' time to live. The thread ends with the app
(`close()`, at lifespan shutdown) or with its gate; while the database is away it says so once and
tries again further and further apart, keeping what it has to give back.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import socket
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Sequence

from mingyan.accounts.quotas import WINDOW_S, Admission, QuotaGate, Subject
from mingyan.store.db import Database
from mingyan.store.serving import SharedCounters

log = logging.getLogger(__name__)

RENEW_EVERY_S = 30.0
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0  # pauses between tries while the database is away


class SharedAdmission(Admission):
    """A request let in: its places are given back once, by the gate's background thread."""

    def __init__(self, gate: SharedQuotaGate, ids: Sequence[str]) -> None:
        self._shared_gate, self._ids = gate, list(ids)

    def release(self) -> None:
        ids, self._ids = self._ids, []
        if ids:
            self._shared_gate.give_back(ids)


class SharedQuotaGate(QuotaGate):
    def __init__(
        self, counters: SharedCounters, *, retry_s: tuple[float, float] = (RETRY_FIRST_S, RETRY_MAX_S)
    ) -> None:
        """`retry_s`: the first and the longest pause between tries while the database is away."""
        super().__init__(clock=time.time)
        self.counters = counters
        self._lock = threading.Lock()  # admissions of this process, one at a time (the view below is shared)
        self._returns: queue.Queue[list[str] | None] = queue.Queue()
        self._retry_s = retry_s
        self._worker: threading.Thread | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether the background thread (started by the first admission) is running."""
        return self._worker is not None and self._worker.is_alive()

    def admit(self, subjects: Sequence[Subject]) -> Admission:
        """Let the request in, or raise QuotaExceeded, counting every process's streams and requests."""
        if not subjects:
            return SharedAdmission(self, [])
        self._start()
        names = [s.name for s in subjects]
        with self._lock, self.counters.locked(names) as view:
            moment = self._clock()
            self._streams = {name: view.streams(name, moment) for name in names}
            self._recent = {name: deque(view.recent(name, moment - WINDOW_S)) for name in names}
            for subject in subjects:
                self._check(subject, moment)  # raises: the transaction rolls back, nothing counted
            ids = view.add(names, moment)
        return SharedAdmission(self, ids)

    def give_back(self, ids: list[str]) -> None:
        self._returns.put(ids)

    def _start(self) -> None:
        if self._worker is None and not self._closed:
            with self._lock:
                if self._worker is None and not self._closed:
                    keeper = _PlaceKeeper(self.counters, self._returns, *self._retry_s)
                    self._worker = threading.Thread(target=keeper.run, name="quota-places", daemon=True)
                    self._worker.start()
                    # The thread holds no reference to the gate: a gate dropped without close()
                    # (an app never shut down) ends its thread when it is collected.
                    weakref.finalize(self, self._returns.put, None)

    def close(self) -> None:
        """Stop the background thread after it has given back what is pending; clear this process's places."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            self._returns.put(None)
            self._worker.join(timeout=5)
        try:
            self.counters.forget_process()
        except Exception as exc:  # shutting down with the database away: the places expire by themselves
            log.warning("quota places of this process not cleared: %s", exc)


class _PlaceKeeper:
    """The gate's background work: places given back are deleted, this process's places renewed.

    While the database is away, the work waits (nothing is lost: places to give back are kept)
    and is tried again after pauses that double up to `max_s`; that is said once, when it starts,
    and once more when the database answers again."""

    def __init__(
        self, counters: SharedCounters, returns: queue.Queue[list[str] | None], first_s: float, max_s: float
    ) -> None:
        self.counters, self.returns = counters, returns
        self.first_s, self.max_s = first_s, max_s
        self.pause: float | None = None  # None while the database answers
        self.pending: list[str] = []

    def run(self) -> None:
        next_renewal = time.monotonic() + RENEW_EVERY_S
        next_try = math.inf  # after a failure: when to try again
        while True:
            wake = min(next_renewal, next_try)
            try:
                ids = self.returns.get(timeout=max(0.0, wake - time.monotonic()))
            except queue.Empty:
                ids = []
            if ids is None:  # closing: one last try to give back what is pending
                if self.pending and self.pause is None:
                    self._update(renew=False)
                return
            self.pending.extend(ids)
            now = time.monotonic()
            if (self.pause is not None and now < next_try) or (not self.pending and now < next_renewal):
                continue
            renew = now >= next_renewal
            if self._update(renew):
                next_try = math.inf
                if renew:
                    next_renewal = now + RENEW_EVERY_S
            else:
                next_try = time.monotonic() + (self.pause or self.first_s)

    def _update(self, renew: bool) -> bool:
        """Give back the pending places (and renew this process's); whether the database took it."""
        try:
            if self.pending:
                self.counters.release(self.pending)
                self.pending = []
            if renew:
                self.counters.renew(time.time())
        except Exception as exc:  # the database away; its places expire by themselves meanwhile
            if self.pause is None:
                log.warning("quota places not updated, trying again quietly until the database answers: %s", exc)
                self.pause = self.first_s
            else:
                self.pause = min(self.pause * 2, self.max_s)
            return False
        if self.pause is not None:
            log.info("quota places updated again: the database answers")
            self.pause = None
        return True


def quota_gate(db: Database | None) -> QuotaGate:
    """Counted in the database when it is PostgreSQL (where several processes may share it); in
    this process's memory otherwise (a SQLite file serves one machine's processes, and one is usual)."""
    if db is None or db.dialect != "postgresql":
        return QuotaGate()
    process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return SharedQuotaGate(SharedCounters(db, process))
