"""MCP tool servers: administrators register, test, enable and remove them (every change audited);
users list the enabled ones and approve or deny a pending call of a side-effecting tool."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from mingyan.api.audit import audit
from mingyan.api.auth import CurrentPrincipal, Principal, require_admin, require_principal
from mingyan.api.context import context
from mingyan.api.schemas import (
    ApprovalDecision,
    EnabledToolServers,
    MessageOut,
    ToolOut,
    ToolServerCreate,
    ToolServerList,
    ToolServerOut,
    ToolServerUpdate,
)
from mingyan.chat.tool_loop import ToolKit
from mingyan.errors import ConflictError
from mingyan.store.errors import NotFound
from mingyan.store.tool_servers import ToolServerRow
from mingyan.tools.approvals import PendingCall
from mingyan.tools.types import Listing

admin = APIRouter(
    prefix="/api/admin/tool-servers",
    dependencies=[Depends(require_principal), Depends(require_admin)],
    tags=["tools"],
)
router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["tools"])
Admin = Annotated[Principal, Depends(require_admin)]


def _kit(request: Request) -> ToolKit:
    return context(request).tool_kit()


def _out(row: ToolServerRow, listing: Listing | None = None) -> ToolServerOut:
    out = ToolServerOut.model_validate(row)
    if listing is not None:
        out.error = listing.error
        if listing.error is None:
            out.tools = [
                ToolOut(
                    name=t.name,
                    description=t.description,
                    input_schema=t.input_schema,
                    side_effecting=t.name in row.side_effecting,
                )
                for t in listing.tools
            ]
    return out


@admin.get("")
async def list_servers(request: Request, tools: bool = False) -> ToolServerList:
    """Every registered server; `tools=true` connects to each and lists its tools."""
    box = _kit(request).box
    rows = await asyncio.to_thread(box.store.list)
    listings = await asyncio.gather(*(box.list_server(r) for r in rows)) if tools else [None] * len(rows)
    return ToolServerList(data=[_out(r, listing) for r, listing in zip(rows, listings, strict=True)])


@admin.post("", status_code=201)
async def add_server(body: ToolServerCreate, request: Request, principal: Admin) -> ToolServerOut:
    box = _kit(request).box
    row = await asyncio.to_thread(
        box.store.add,
        body.name,
        body.kind,
        command=body.command,
        args=body.args,
        url=body.url,
        headers_secret=box.vault.seal(body.headers),
        enabled=body.enabled,
        side_effecting=body.side_effecting,
    )
    await audit(request, principal, "tool_server_added", row.name, kind=row.kind, enabled=row.enabled)
    return _out(row)


@admin.post("/{server_id}/test")
async def test_server(server_id: str, request: Request) -> ToolServerOut:
    """Connect and list the server's tools (an unreachable server: `error` says why)."""
    box = _kit(request).box
    row = await asyncio.to_thread(box.store.get, server_id)
    return _out(row, await box.list_server(row))


@admin.patch("/{server_id}")
async def update_server(server_id: str, body: ToolServerUpdate, request: Request, principal: Admin) -> ToolServerOut:
    """Enable or disable the server; set which of its tools need the user's approval."""
    values = body.model_dump(exclude_none=True)
    store = _kit(request).box.store
    row = await asyncio.to_thread(store.update, server_id, **values) if values else store.get(server_id)
    await audit(request, principal, "tool_server_changed", row.name, **values)
    return _out(row)


@admin.delete("/{server_id}", status_code=204)
async def remove_server(server_id: str, request: Request, principal: Admin) -> Response:
    row = await asyncio.to_thread(_kit(request).box.store.remove, server_id)
    await audit(request, principal, "tool_server_removed", row.name)
    return Response(status_code=204)


@router.get("/tools")
async def enabled_servers(request: Request) -> EnabledToolServers:
    """The tool servers a user may switch on (`tools` of a message request)."""
    return EnabledToolServers(data=await _kit(request).box.enabled_names())


@router.post("/conversations/{conversation_id}/messages/{message_id}/approval")
async def decide(
    conversation_id: str, message_id: str, body: ApprovalDecision, request: Request, principal: CurrentPrincipal
) -> MessageOut:
    """Approve or deny the pending call of tool message `message_id` (the caller's own)."""
    owner = principal.user_id
    message = await asyncio.to_thread(context(request).history().get_message, owner, message_id)
    if message.conversation_id != conversation_id or message.role != "tool":
        raise NotFound(f"No tool call {message_id} in conversation {conversation_id}.")
    if not _kit(request).approvals.decide(owner, message_id, body.approve):
        raise ConflictError("this call is not waiting for approval", code="not_pending")
    outcome = "approved" if body.approve else "denied"
    details = PendingCall.of(conversation_id, message.tool or {}).details(outcome)
    await audit(request, principal, f"tool_call_{outcome}", message_id, **details)
    return MessageOut.model_validate(message)
