"""Attaching to a reply that another server process is generating (API replicas on one database):
its text is followed through the partial saves that process makes, until the message is no longer
`streaming`. A reply whose process died (not saved for chat.live.STALE_S) is marked `interrupted`
with its text so far."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from mingyan.api.schemas import MessageOut
from mingyan.api.streaming import sse
from mingyan.chat.live import STALE_S
from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import Message

POLL_S = 0.25


async def follow(store: ConversationStore, owner: str, message: Message) -> AsyncIterator[str]:
    """SSE as for a reply of this process: `snapshot`, `delta`..., `done`."""
    text = message.content
    yield sse({"type": "snapshot", "text": text})
    while message.status == "streaming":
        await asyncio.sleep(POLL_S)
        stale = datetime.now(UTC) - timedelta(seconds=STALE_S)
        await asyncio.to_thread(store.interrupt_if_stale, owner, message.id, stale)
        message = await asyncio.to_thread(store.get_message, owner, message.id)
        if message.content.startswith(text) and len(message.content) > len(text):
            yield sse({"type": "delta", "text": message.content[len(text) :]})
            text = message.content
    yield sse({"type": "done", "message": MessageOut.model_validate(message).model_dump(mode="json")})
