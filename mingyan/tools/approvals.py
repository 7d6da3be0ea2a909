"""Calls to side-effecting tools wait here for their owner's decision.

A pending call is keyed by its tool message id and belongs to one owner: only that owner's
`decide` settles it (the route checks ownership the same way). No decision within the timeout
counts as a denial, and is recorded (`record`: the audit log) as an explicit decision is by the
approval route. A decision can come only through `decide`, never from text the model or a tool
wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Records an approval that timed out: (owner, tool message id, details of `PendingCall.details`).
Record = Callable[[str, str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class PendingCall:
    """What the audit log keeps of a call waiting for approval (a digest of its arguments, not them)."""

    conversation_id: str
    server: str
    tool: str
    arguments: str  # JSON, as the model wrote them

    @classmethod
    def of(cls, conversation_id: str, provenance: Mapping[str, Any]) -> PendingCall:
        """From a tool message's provenance (its `tool` field)."""
        return cls(
            conversation_id,
            str(provenance.get("server") or ""),
            str(provenance.get("tool") or ""),
            str(provenance.get("arguments") or ""),
        )

    def details(self, outcome: str) -> dict[str, Any]:
        return {
            "conversation": self.conversation_id,
            "server": self.server,
            "tool": self.tool,
            "arguments_sha256": hashlib.sha256(self.arguments.encode()).hexdigest(),
            "outcome": outcome,
        }


@dataclass
class _Pending:
    owner: str
    decision: asyncio.Future[bool]


class Approvals:
    def __init__(self, record: Record | None = None) -> None:
        self._pending: dict[str, _Pending] = {}
        self._record = record

    async def wait(self, owner: str, key: str, timeout: float, call: PendingCall | None = None) -> str:
        """`approved`, `denied`, or `timeout` (counted as denied; recorded with `call`'s details)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[key] = _Pending(owner, future)
        try:
            outcome = "approved" if await asyncio.wait_for(future, timeout) else "denied"
        except TimeoutError:
            outcome = "timeout"
        finally:
            self._pending.pop(key, None)
        if outcome == "timeout" and self._record is not None and call is not None:
            try:
                await self._record(owner, key, call.details(outcome))
            except Exception:  # the reply goes on; the log says what was not recorded
                log.exception("could not record the approval timeout of tool message %s", key)
        return outcome

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
