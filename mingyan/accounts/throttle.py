"""Sign-in throttling: failed attempts per (client address, username) and per client address.

An attempt is counted when it starts, before the password is checked (a reservation): so many
requests sent at once are counted as they arrive, and at most the limit of them are ever checked.
A successful sign-in releases its reservation. Usernames are counted in the form accounts compare
them in (NFKC casefold), so `ＶＩＣＴＩＭ` and `victim` share one counter; an IPv6 client's
address counts as its /64 network, which one host usually holds whole.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from mingyan.errors import MingyanError
from mingyan.store.accounts.credentials import username_key

FAILED_LOGIN_LIMIT = 10  # per client address and username, per window
ADDRESS_LIMIT = 30  # per client address, across usernames, per window
WINDOW_S = 15 * 60
NAME_KEY_MAX = 256
PRUNE_AT = 10_000  # tracked counters before expired ones are dropped

K = TypeVar("K")


class TooManyAttempts(MingyanError):
    """Too many recent sign-in attempts; the client may try again after `retry_after_s`."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Attempt:
    """One counted sign-in attempt (what `LoginThrottle.reserve` hands back)."""

    address: str
    name: str
    at: float


def address_key(host: str) -> str:
    """The client an address stands for: an IPv4 address, or an IPv6 address's /64 network."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def name_key(username: str) -> str:
    return username_key(username)[:NAME_KEY_MAX]


class LoginThrottle:
    """Refuses sign-in attempts past `limit` per (address, username) or `address_limit` per address
    within `window_s`. Thread-safe; `clock` is injectable."""

    def __init__(
        self,
        limit: int = FAILED_LOGIN_LIMIT,
        address_limit: int = ADDRESS_LIMIT,
        window_s: float = WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.address_limit, self.window_s = limit, address_limit, window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, str], deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}
        self._prune_at = PRUNE_AT

    def reserve(self, address: str, username: str) -> Attempt:
        """Count an attempt before its password is checked; TooManyAttempts when a limit is reached."""
        attempt_address, attempt_name = address_key(address), name_key(username)
        with self._lock:
            now = self.clock()
            self._prune(now)
            pair = self._recent(self._pairs, (attempt_address, attempt_name), now)
            per_address = self._recent(self._addresses, attempt_address, now)
            for recent, limit in ((pair, self.limit), (per_address, self.address_limit)):
                if len(recent) >= limit:
                    wait = self.window_s - (now - recent[0])
                    raise TooManyAttempts("Too many sign-in attempts; try again later.", retry_after_s=wait)
            pair.append(now)
            per_address.append(now)
        return Attempt(attempt_address, attempt_name, now)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: this attempt and the name's earlier failures from this address
        no longer count (the address's failures with other names still do)."""
        with self._lock:
            self._pairs.pop((attempt.address, attempt.name), None)
            per_address = self._addresses.get(attempt.address)
            if per_address is not None and attempt.at in per_address:
                per_address.remove(attempt.at)

    def _recent(self, counters: dict, key: object, now: float) -> deque[float]:
        recent = counters.setdefault(key, deque())
        while recent and now - recent[0] >= self.window_s:
            recent.popleft()
        return recent

    def _prune(self, now: float) -> None:
        """Drop counters whose attempts have all expired, once there are many (memory stays bounded)."""
        if len(self._pairs) + len(self._addresses) < self._prune_at:
            return
        _drop_expired(self._pairs, now - self.window_s)
        _drop_expired(self._addresses, now - self.window_s)
        self._prune_at = max(PRUNE_AT, 2 * (len(self._pairs) + len(self._addresses)))


def _drop_expired(counters: dict[K, deque[float]], before: float) -> None:
    """Remove the counters whose newest attempt is older than `before`."""
    for key in [k for k, attempts in counters.items() if not attempts or attempts[-1] <= before]:
        del counters[key]
