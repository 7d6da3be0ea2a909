"""The retention job: conversations not updated for `days` are deleted — with their live replies
stopped and their saved KV states forgotten, exactly as a user's own deletion — on a schedule.

The job is given its clock and its two operations (find the expired, delete one), so a test runs it
on a controlled clock against the real store and engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 3600.0


class RetentionJob:
    def __init__(
        self,
        days: int,
        find_expired: Callable[[datetime], list[tuple[str, str]]],
        delete: Callable[[str, str], Awaitable[None]],
        *,
        clock: Callable[[], datetime],
        interval_s: float = DEFAULT_INTERVAL_S,
        on_deleted: Callable[[int], None] | None = None,
    ) -> None:
        self.days = days
        self.find_expired = find_expired  # blocking: run in a thread
        self.delete = delete
        self.clock = clock
        self.interval_s = interval_s
        self.on_deleted = on_deleted  # how many went in a run (for the audit log)

    async def run_once(self) -> int:
        """Delete every conversation last updated more than `days` ago; returns how many went."""
        cutoff = self.clock() - timedelta(days=self.days)
        gone = 0
        while expired := await asyncio.to_thread(self.find_expired, cutoff):
            for owner, conversation_id in expired:
                try:
                    await self.delete(owner, conversation_id)
                    gone += 1
                except Exception:  # noqa: BLE001 - one failure must not stop the others (nor loop forever)
                    log.exception("retention: could not delete conversation %s", conversation_id)
                    return gone
        if gone and self.on_deleted is not None:
            self.on_deleted(gone)
        return gone

    async def run_forever(self) -> None:
        while True:
            try:
                gone = await self.run_once()
                if gone:
                    log.info("retention: deleted %d conversations older than %d days", gone, self.days)
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("retention run failed")
            await asyncio.sleep(self.interval_s)
