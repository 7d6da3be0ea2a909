"""Starts the retention job of an app with `--retention-days` (and a history database)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import partial

from mingyan.api.context import AppContext
from mingyan.safety.retention import RetentionJob
from mingyan.store.errors import NotFound
from mingyan.store.retention import expired_conversations
from mingyan.store.tables import utcnow


def retention_job(ctx: AppContext, *, clock: Callable[[], datetime] = utcnow) -> RetentionJob | None:
    days = ctx.settings.retention_days
    if days <= 0 or ctx.store is None or ctx.conversations is None:
        return None
    conversations = ctx.conversations

    async def delete(owner: str, conversation_id: str) -> None:
        try:
            await conversations.delete(owner, conversation_id)  # live replies stopped, KV states forgotten
        except NotFound:
            pass  # deleted meanwhile

    def audited(count: int) -> None:
        if ctx.accounts is not None:
            ctx.accounts.ledger.audit("retention_deleted", actor="retention", conversations=count, days=days)

    return RetentionJob(days, partial(expired_conversations, ctx.store), delete, clock=clock, on_deleted=audited)


def start_retention(ctx: AppContext) -> asyncio.Task[None] | None:
    job = retention_job(ctx)
    return asyncio.create_task(job.run_forever(), name="retention") if job is not None else None
