"""Sign-in throttling: too many recent failures for one (address, username) pair are refused."""

from __future__ import annotations

import time
from collections import deque

from mingyan.errors import EngineBusyError

FAILED_LOGIN_LIMIT = 10  # per client address and username, per window
FAILED_LOGIN_WINDOW_S = 15 * 60


class LoginThrottle:
    """Refuses sign-ins for an (address, username) pair after too many recent failures."""

    def __init__(self, limit: int = FAILED_LOGIN_LIMIT, window_s: float = FAILED_LOGIN_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def check(self, address: str, username: str) -> None:
        recent = self._recent(address, username)
        if len(recent) >= self.limit:
            wait = self.window_s - (time.monotonic() - recent[0])
            raise EngineBusyError("Too many failed sign-ins; try again later.", retry_after_s=wait)

    def failed(self, address: str, username: str) -> None:
        self._recent(address, username).append(time.monotonic())

    def succeeded(self, address: str, username: str) -> None:
        self._failures.pop((address, username.casefold()), None)

    def _recent(self, address: str, username: str) -> deque[float]:
        recent = self._failures.setdefault((address, username.casefold()), deque())
        while recent and time.monotonic() - recent[0] >= self.window_s:
            recent.popleft()
        return recent
