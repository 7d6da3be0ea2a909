"""The first-run setup token: printed by `serve` while there are no accounts, good for one use."""

from __future__ import annotations

import hashlib
import hmac


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class SetupToken:
    """Kept only hashed. `take` consumes it before anything awaits, so concurrent setups cannot both
    pass; `give_back` restores it when nothing was made (a refused username)."""

    def __init__(self, token: str | None) -> None:
        self._hash = _digest(token) if token else None
        self._taken: bytes | None = None

    @property
    def pending(self) -> bool:
        return self._hash is not None

    def take(self, presented: str) -> bool:
        expected = self._hash
        if expected is None or not hmac.compare_digest(_digest(presented), expected):
            return False
        self._hash, self._taken = None, expected
        return True

    def give_back(self) -> None:
        if self._taken is not None:
            self._hash, self._taken = self._taken, None
