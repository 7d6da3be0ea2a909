"""Quotas, checked at admission, before any generation: requests per minute, tokens per day,
concurrent streams — for a user and, separately, for the API key a request uses.

`QuotaGate.admit` checks every subject of a request first and records nothing unless all pass,
so a refused request costs no quota. The tokens-per-day figure comes from the usage records
(a callback); the other two are counted here, in memory (they are about the last minute and the
streams running now, which a restart ends anyway).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mingyan.errors import MingyanError
from mingyan.store.accounts.types import Quota

WINDOW_S = 60.0


@dataclass(frozen=True)
class Subject:
    """Who a limit applies to: `user:ID` or `key:ID`, with its limits and how to read its tokens today."""

    name: str
    limits: Quota  # None values: no limit
    tokens_today: Callable[[], int] | None = None


class QuotaExceeded(MingyanError):
    """A quota is used up: answer 429 with Retry-After, before any token is generated."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Admission:
    """A request let in: holds one concurrent-stream place per subject until `release()`."""

    def __init__(self, gate: QuotaGate, names: Sequence[str]) -> None:
        self._gate = gate
        self._names = list(names)

    def release(self) -> None:
        names, self._names = self._names, []  # once
        for name in names:
            self._gate._streams[name] -= 1
            if not self._gate._streams[name]:
                del self._gate._streams[name]


class QuotaGate:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._clock = clock
        self._now = now
        self._recent: dict[str, deque[float]] = {}
        self._streams: dict[str, int] = {}

    def admit(self, subjects: Sequence[Subject]) -> Admission:
        """Let the request in, or raise QuotaExceeded naming the first limit it hits."""
        moment = self._clock()
        for subject in subjects:
            self._check(subject, moment)
        for subject in subjects:
            self._recent.setdefault(subject.name, deque()).append(moment)
            self._streams[subject.name] = self._streams.get(subject.name, 0) + 1
        return Admission(self, [s.name for s in subjects])

    def streams(self, name: str) -> int:
        return self._streams.get(name, 0)

    def _check(self, subject: Subject, moment: float) -> None:
        limits, who = subject.limits, _describe(subject.name)
        if limits.concurrent_streams is not None and self.streams(subject.name) >= limits.concurrent_streams:
            raise QuotaExceeded(
                f"{who} already has {limits.concurrent_streams} replies running (the limit); wait for one to finish.",
                retry_after_s=1,
            )
        if limits.requests_per_minute is not None:
            recent = self._recent.setdefault(subject.name, deque())
            while recent and moment - recent[0] >= WINDOW_S:
                recent.popleft()
            if len(recent) >= limits.requests_per_minute:
                wait = WINDOW_S - (moment - recent[0])
                raise QuotaExceeded(
                    f"{who} made {limits.requests_per_minute} requests in the last minute (the limit); "
                    f"retry in {math.ceil(wait)} s.",
                    retry_after_s=wait,
                )
        if limits.tokens_per_day is not None and subject.tokens_today is not None:
            used = subject.tokens_today()
            if used >= limits.tokens_per_day:
                wait = (self.day_start() + timedelta(days=1) - self._now()).total_seconds()
                raise QuotaExceeded(
                    f"{who} used {used} of {limits.tokens_per_day} tokens today (UTC); "
                    "the quota resets at midnight UTC.",
                    retry_after_s=max(1.0, wait),
                )

    def day_start(self) -> datetime:
        """Midnight UTC today: the start of the tokens-per-day window."""
        return self._now().replace(hour=0, minute=0, second=0, microsecond=0)


def _describe(name: str) -> str:
    kind, _, _ = name.partition(":")
    return "this API key" if kind == "key" else "your account"
