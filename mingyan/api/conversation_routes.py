"""/api/conversations: stored conversations, JSON and SSE. Parse, call the store or service, serialize."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from mingyan.api.audit import audit
from mingyan.api.auth import CurrentPrincipal, Owner, require_principal
from mingyan.api.content_screens import screen_title
from mingyan.api.context import context
from mingyan.api.document_routes import with_citations
from mingyan.api.metering import metered_reply
from mingyan.api.model_routing import served_chat_model
from mingyan.api.reply_follow import follow
from mingyan.api.schemas import (
    BranchSwitch,
    CitationOut,
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    ConversationOut,
    ConversationUpdate,
    ExchangeOut,
    MessageCreate,
    MessageEdit,
    MessageOut,
    PageOffset,
    ReplyOptions,
)
from mingyan.api.streaming import buffer_bytes, sse, sse_response
from mingyan.api.tool_choice import checked_settings
from mingyan.chat.conversations import ConversationService, Exchange
from mingyan.chat.live import LiveReply
from mingyan.store.conversations import ConversationStore
from mingyan.store.errors import NotFound
from mingyan.store.tables import Message

router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["conversations"])


def _store(request: Request) -> ConversationStore:
    return context(request).history()


def _service(request: Request) -> ConversationService:
    return context(request).conversation_service()


@router.get("/conversations")
def list_conversations(
    request: Request,
    owner: Owner,
    archived: bool = False,
    archived_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: PageOffset = 0,
) -> ConversationList:
    """`archived=true` includes archived conversations; `archived_only=true` lists only those."""
    rows = _store(request).list_conversations(
        owner, include_archived=archived, archived_only=archived_only, limit=limit + 1, offset=offset
    )
    data = [ConversationOut.model_validate(c) for c in rows[:limit]]
    return ConversationList(data=data, has_more=len(rows) > limit)


@router.post("/conversations", status_code=201)
def create_conversation(body: ConversationCreate, request: Request, owner: Owner) -> ConversationOut:
    screen_title(context(request).chat, owner, body.title)  # the content policy: nothing created if blocked
    conversation = _store(request).create_conversation(
        owner,
        title=body.title,
        model=served_chat_model(context(request), body.model),
        system_prompt=body.system_prompt,
        settings=checked_settings(request, body.settings.values()),
    )
    return ConversationOut.model_validate(conversation)


@router.get("/conversations/{conversation_id}")
async def get_conversation(conversation_id: str, request: Request, owner: Owner) -> ConversationDetail:
    tree = await asyncio.to_thread(_store(request).tree, owner, conversation_id)
    live = [r.id for r in _service(request).hub.for_conversation(owner, conversation_id)]
    return ConversationDetail(
        **ConversationOut.model_validate(tree.conversation).model_dump(),
        messages=await with_citations(request, owner, tree.messages),
        current_path=tree.current_path,
        live=live,
    )


@router.patch("/conversations/{conversation_id}")
def update_conversation(
    conversation_id: str, body: ConversationUpdate, request: Request, owner: Owner
) -> ConversationOut:
    values = body.model_dump(exclude_unset=True)
    screen_title(context(request).chat, owner, values.get("title"))
    if "settings" in values:
        new = body.settings.values() if body.settings else {}
        values["settings"] = checked_settings(request, new, owner, conversation_id)
    if values.get("model") is not None:
        values["model"] = served_chat_model(context(request), values["model"])
    for name in ("title", "model", "pinned", "archived"):
        if name in values and values[name] is None:
            del values[name]  # null means "leave as is" for fields that cannot be empty
    conversation = _store(request).update_conversation(owner, conversation_id, **values)
    return ConversationOut.model_validate(conversation)


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(conversation_id: str, request: Request, principal: CurrentPrincipal) -> Response:
    await _service(request).delete(principal.user_id, conversation_id)
    await audit(request, principal, "conversation_deleted", conversation_id)
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/branch")
def switch_branch(conversation_id: str, body: BranchSwitch, request: Request, owner: Owner) -> ConversationOut:
    store = _store(request)
    store.switch_branch(owner, conversation_id, body.message_id)
    return ConversationOut.model_validate(store.get_conversation(owner, conversation_id))


# ---- replies -----------------------------------------------------------------------------------


@router.post("/conversations/{conversation_id}/messages", response_model=None)
async def send_message(conversation_id: str, body: MessageCreate, request: Request, principal: CurrentPrincipal):
    exchange = await metered_reply(
        request,
        principal,
        "conversations.send",
        lambda: _service(request).send(
            principal.user_id,
            conversation_id,
            body.content,
            parent_id=body.parent_id,
            settings=_overrides(body),
            tools=body.tools,
            file_ids=body.file_ids,
        ),
    )
    return await _respond(request, exchange, body.stream)


@router.post("/conversations/{conversation_id}/messages/{message_id}/edit", response_model=None)
async def edit_message(
    conversation_id: str, message_id: str, body: MessageEdit, request: Request, principal: CurrentPrincipal
):
    exchange = await metered_reply(
        request,
        principal,
        "conversations.edit",
        lambda: _service(request).edit(
            principal.user_id, conversation_id, message_id, body.content, settings=_overrides(body), tools=body.tools
        ),
    )
    return await _respond(request, exchange, body.stream)


@router.post("/conversations/{conversation_id}/messages/{message_id}/regenerate", response_model=None)
async def regenerate(
    conversation_id: str,
    message_id: str,
    request: Request,
    principal: CurrentPrincipal,
    body: ReplyOptions | None = None,
):
    options = body or ReplyOptions()
    exchange = await metered_reply(
        request,
        principal,
        "conversations.regenerate",
        lambda: _service(request).regenerate(
            principal.user_id, conversation_id, message_id, settings=_overrides(options), tools=options.tools
        ),
    )
    return await _respond(request, exchange, options.stream)


@router.get("/conversations/{conversation_id}/messages/{message_id}/events")
async def reply_events(conversation_id: str, message_id: str, request: Request, owner: Owner) -> StreamingResponse:
    """Attach to a reply: its text so far, then the rest as it is generated, then the saved message.

    A finished reply answers with its `done` event at once."""
    message = _message_in(_store(request), owner, conversation_id, message_id)
    reply = _service(request).hub.get(owner, message_id)
    if reply is None and message.status == "streaming":  # generated by another server process
        return sse_response(follow(_store(request), owner, message), buffer_bytes=buffer_bytes(request), stored=True)
    if reply is None:
        return sse_response(_finished(message), buffer_bytes=buffer_bytes(request), stored=True)
    return sse_response(_events(reply), buffer_bytes=buffer_bytes(request), stored=True)


@router.post("/conversations/{conversation_id}/messages/{message_id}/stop")
async def stop_reply(conversation_id: str, message_id: str, request: Request, owner: Owner) -> MessageOut:
    """Stop a reply being generated; its text so far is kept (status `stopped`). Idempotent."""
    message = _message_in(_store(request), owner, conversation_id, message_id)
    reply = _service(request).hub.get(owner, message_id)
    if reply is not None:
        reply.stop()
        message = await reply.wait() or message
    return MessageOut.model_validate(message)


def _overrides(body: ReplyOptions) -> dict | None:
    return body.settings.values() if body.settings else None


def _message_in(store: ConversationStore, owner: str, conversation_id: str, message_id: str) -> Message:
    message = store.get_message(owner, message_id)
    if message.conversation_id != conversation_id:
        raise NotFound(f"No message {message_id} in conversation {conversation_id}.")
    return message


async def _respond(request: Request, exchange: Exchange, stream: bool) -> StreamingResponse | ExchangeOut:
    if stream:
        return sse_response(_events(exchange.reply, exchange), buffer_bytes=buffer_bytes(request), stored=True)
    final = await exchange.reply.wait()
    out = _exchange_out(exchange, final or exchange.reply.message)
    out.message.citations = [CitationOut.model_validate(c) for c in exchange.reply.citations]
    return out


def _exchange_out(exchange: Exchange, message: Message) -> ExchangeOut:
    user = MessageOut.model_validate(exchange.user_message) if exchange.user_message else None
    message_out = MessageOut.model_validate(message)
    return ExchangeOut(user_message=user, message=message_out, omitted_turns=exchange.omitted_turns)


async def _events(reply: LiveReply, exchange: Exchange | None = None) -> AsyncIterator[str]:
    """SSE: `start` (new replies), `snapshot`, `delta`..., `done`. Leaving early never stops the reply."""
    if exchange is not None:
        start = _exchange_out(exchange, reply.message).model_dump(mode="json")
        yield sse({"type": "start", **start})
    async for event in reply.events():
        if event.type == "done":
            message = None
            if event.message:
                out = MessageOut.model_validate(event.message)
                out.citations = [CitationOut.model_validate(c) for c in reply.citations]
                message = out.model_dump(mode="json")
            yield sse({"type": "done", "message": message})
        elif event.message is not None:  # a tool loop's step: the message it concerns
            yield sse({"type": event.type, "text": event.text, "message": _message_json(event.message)})
        else:
            yield sse({"type": event.type, "text": event.text})


def _message_json(message: Message) -> dict:
    return MessageOut.model_validate(message).model_dump(mode="json")


async def _finished(message: Message) -> AsyncIterator[str]:
    yield sse({"type": "done", "message": MessageOut.model_validate(message).model_dump(mode="json")})
