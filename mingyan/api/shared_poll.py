"""What server processes on one database learn from each other by polling it, once a second:
keyword-bank edits made by another process (applied here), and administrators' requests to stop
a reply this process is generating (carried out here)."""

from __future__ import annotations

import asyncio
import logging
import time

from mingyan.api.context import AppContext
from mingyan.chat.admin_stop import StopRequests
from mingyan.store.live_replies import LiveReplyStore

log = logging.getLogger(__name__)

POLL_S = 1.0  # the bound on how late another process's bank edit or stop request takes effect here
PRUNE_EVERY_S = 300.0
STOP_REQUEST_TTL_S = 600.0


async def poll_shared_state(ctx: AppContext, *, poll_s: float = POLL_S) -> None:
    """Forever: apply newer bank versions, carry out stop requests, prune old requests."""
    store = LiveReplyStore(ctx.history().db)
    stops = StopRequests(ctx.conversation_service().hub, store)
    pruned = time.monotonic()
    while True:
        await asyncio.sleep(poll_s)
        try:
            if ctx.banks is not None:
                await asyncio.to_thread(ctx.banks.refresh)
            await stops.carry_out()
            if time.monotonic() - pruned >= PRUNE_EVERY_S:
                await asyncio.to_thread(store.prune, STOP_REQUEST_TTL_S)
                pruned = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - the database away: the next poll tries again
            log.warning("shared state not polled: %s", exc)


def start_shared_poll(ctx: AppContext) -> asyncio.Task[None] | None:
    if ctx.store is None or ctx.conversations is None:
        return None
    return asyncio.create_task(poll_shared_state(ctx), name="shared-poll")
