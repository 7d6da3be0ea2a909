"""/api/admin/live: every user's live replies (no text), and stopping one wherever it runs.
Administrators only; each stop is audited (`reply_stopped`)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from mingyan.api.audit import audit
from mingyan.api.auth import Principal, require_admin, require_principal
from mingyan.api.context import context
from mingyan.api.schemas.live import LiveReplyList, LiveReplyOut, LiveStopOut
from mingyan.chat.admin_stop import ADMIN_STOP, stop_by_admin
from mingyan.chat.live import ALIVE_S, ReplyHub
from mingyan.store.live_replies import LiveReplyStore
from mingyan.store.tables import Message

router = APIRouter(
    prefix="/api/admin/live", dependencies=[Depends(require_principal), Depends(require_admin)], tags=["admin"]
)
Admin = Annotated[Principal, Depends(require_admin)]

LISTED_WITHIN_S = 2 * ALIVE_S  # a `streaming` reply not saved for longer is not running (its process died)
STOP_WAIT_S = 10.0  # how long a stop waits for another process to carry it out
POLL_S = 0.2


def _hub(request: Request) -> ReplyHub:
    return context(request).conversation_service().hub


def _store(request: Request) -> LiveReplyStore:
    return LiveReplyStore(context(request).history().db)


@router.get("")
async def live_replies(request: Request) -> LiveReplyList:
    """The replies being generated now, by every server process on this database, oldest first."""
    hub = _hub(request)
    rows = await asyncio.to_thread(_store(request).running, LISTED_WITHIN_S)
    data = []
    for row in rows:
        reply = hub.find(row.message_id)
        data.append(
            LiveReplyOut(
                id=row.message_id,
                user_id=row.owner,
                username=row.username,
                conversation_id=row.conversation_id,
                model=row.model,
                started=row.started,
                tokens=reply.pieces if reply is not None else row.tokens,
                here=reply is not None,
            )
        )
    return LiveReplyList(data=data)


@router.post("/{message_id}/stop", response_model=LiveStopOut)
async def stop_live_reply(message_id: str, request: Request, response: Response, admin: Admin) -> LiveStopOut:
    """Stop the reply: it ends `interrupted`, with its text so far and `moderation: "admin_stop"`.
    A reply that already ended is left as it is (`stopped: false`); 404 for an unknown one."""
    store = _store(request)
    message, owner = await asyncio.to_thread(store.find, message_id)
    live = message.status == "streaming"
    if live:
        message = await _stop(request, store, message, admin)
    stopped, pending = live and message.moderation == ADMIN_STOP, message.status == "streaming"
    if stopped or pending:
        await audit(request, admin, "reply_stopped", message_id, owner=owner, pending=pending)
    if pending:
        response.status_code = 202
    return LiveStopOut(
        id=message_id,
        user_id=owner,
        conversation_id=message.conversation_id,
        status=message.status,
        moderation=message.moderation,
        stopped=stopped,
        pending=pending,
    )


async def _stop(request: Request, store: LiveReplyStore, message: Message, admin: Principal) -> Message:
    """Stop the running reply `message` here, or ask its process to; the message as it is then."""
    reply = _hub(request).find(message.id)
    if reply is not None:
        stop_by_admin(reply)
        return await reply.wait() or message
    await asyncio.to_thread(store.request_stop, message.id, admin.user_id)  # carried out at the holder's poll
    message = await _until_ended(store, message.id)
    if message.status != "streaming":
        await asyncio.to_thread(store.done, [message.id])
    return message


async def _until_ended(store: LiveReplyStore, message_id: str) -> Message:
    """The message once it is no longer `streaming`, or as it is after STOP_WAIT_S."""
    deadline = time.monotonic() + STOP_WAIT_S
    while True:
        message, _ = await asyncio.to_thread(store.find, message_id)
        if message.status != "streaming" or time.monotonic() >= deadline:
            return message
        await asyncio.sleep(POLL_S)
