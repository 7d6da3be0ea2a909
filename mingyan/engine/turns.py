"""Jobs served in turn by one worker thread: each turn advances one job by one step.

A long job (thousands of inputs to embed) then delays a short one by at most one step, instead of
making it wait for the whole long job.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

J = TypeVar("J")


class TurnQueue(Generic[J]):
    """Thread-safe: `put` from any thread; `take` / `again` from the worker."""

    def __init__(self) -> None:
        self._jobs: deque[J] = deque()
        self._ready = threading.Condition()
        self._closed = False

    def put(self, job: J) -> bool:
        """Queue a new job; False once closed."""
        with self._ready:
            if self._closed:
                return False
            self._jobs.append(job)
            self._ready.notify()
            return True

    def take(self) -> J | None:
        """The job whose turn it is, waiting for one; None once closed."""
        with self._ready:
            while not self._jobs and not self._closed:
                self._ready.wait()
            return None if self._closed else self._jobs.popleft()

    def again(self, job: J) -> bool:
        """Put an unfinished job back at the end of the line; False once closed."""
        with self._ready:
            if self._closed:
                return False
            self._jobs.append(job)
            return True

    def close(self) -> list[J]:
        """Stop handing out jobs; returns those never finished (the caller settles them)."""
        with self._ready:
            self._closed = True
            left = list(self._jobs)
            self._jobs.clear()
            self._ready.notify_all()
            return left
