"""The quota gate of API replicas: the same limits and messages as QuotaGate, counted in the
database (mingyan.store.serving) so that every `mingyan serve` process on one PostgreSQL sees the
others' running streams and recent requests.

A released place is deleted by a background thread (release is called from the event loop and
must not wait for the database); the same thread renews this process's running streams, so a
crashed process's places expire after the counters' time to live.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence

from mingyan.accounts.quotas import WINDOW_S, Admission, QuotaGate, Subject
from mingyan.store.db import Database
from mingyan.store.serving import SharedCounters

log = logging.getLogger(__name__)

RENEW_EVERY_S = 30.0


class SharedAdmission(Admission):
    """A request let in: its places are given back once, by the gate's background thread."""

    def __init__(self, gate: SharedQuotaGate, ids: Sequence[str]) -> None:
        self._shared_gate, self._ids = gate, list(ids)

    def release(self) -> None:
        ids, self._ids = self._ids, []
        if ids:
            self._shared_gate.give_back(ids)


class SharedQuotaGate(QuotaGate):
    def __init__(self, counters: SharedCounters) -> None:
        super().__init__(clock=time.time)
        self.counters = counters
        self._lock = threading.Lock()  # admissions of this process, one at a time (the view below is shared)
        self._returns: queue.Queue[list[str] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

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
        if self._worker is None:
            with self._lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="quota-places", daemon=True)
                    self._worker.start()

    def _work(self) -> None:
        next_renewal = time.monotonic() + RENEW_EVERY_S
        while True:
            try:
                ids = self._returns.get(timeout=max(0.0, next_renewal - time.monotonic()))
            except queue.Empty:
                ids = []
            if ids is None:
                return
            try:
                if ids:
                    self.counters.release(ids)
                if time.monotonic() >= next_renewal:
                    self.counters.renew(time.time())
                    next_renewal = time.monotonic() + RENEW_EVERY_S
            except Exception as exc:  # the database away: places expire by themselves
                log.warning("quota places not updated: %s", exc)

    def close(self) -> None:
        """Give back what is pending and this process's places."""
        if self._worker is not None:
            self._returns.put(None)
            self._worker.join(timeout=5)
        try:
            self.counters.forget_process()
        except Exception as exc:  # pragma: no cover - shutting down with the database away
            log.warning("quota places of this process not cleared: %s", exc)


def quota_gate(db: Database | None) -> QuotaGate:
    """Counted in the database when it is PostgreSQL (where several processes may share it); in
    this process's memory otherwise (a SQLite file serves one machine's processes, and one is usual)."""
    if db is None or db.dialect != "postgresql":
        return QuotaGate()
    process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return SharedQuotaGate(SharedCounters(db, process))
