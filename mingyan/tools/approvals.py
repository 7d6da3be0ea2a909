"""Calls to side-effecting tools wait here for their owner's decision.

A pending call is keyed by its tool message id and belongs to one owner: only that owner's
`decide` settles it (the route checks ownership the same way). No decision within the timeout
counts as a denial. A decision can come only through `decide`, never from text the model or a
tool wrote.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class _Pending:
    owner: str
    decision: asyncio.Future[bool]


class Approvals:
    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    async def wait(self, owner: str, key: str, timeout: float) -> str:
        """`approved`, `denied`, or `timeout` (counted as denied)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[key] = _Pending(owner, future)
        try:
            return "approved" if await asyncio.wait_for(future, timeout) else "denied"
        except TimeoutError:
            return "timeout"
        finally:
            self._pending.pop(key, None)

    def decide(self, owner: str, key: str, approve: bool) -> bool:
        """Settle the owner's pending call `key`; False if there is none (or it is another owner's)."""
        pending = self._pending.get(key)
        if pending is None or pending.owner != owner or pending.decision.done():
            return False
        pending.decision.set_result(approve)
        return True

    def is_pending(self, owner: str, key: str) -> bool:
        pending = self._pending.get(key)
        return pending is not None and pending.owner == owner
