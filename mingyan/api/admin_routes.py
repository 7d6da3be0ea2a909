"""/api/admin: users, their quotas, everyone's usage, the audit log. Administrators only."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from mingyan.api.audit import audit
from mingyan.api.auth import Principal, require_admin, require_principal
from mingyan.api.schemas import (
    PageOffset,
    AuditEntryOut,
    AuditLog,
    Limits,
    QuotaOut,
    UsageReport,
    UsageTotalOut,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)
from mingyan.errors import ConflictError
from mingyan.store.accounts import Accounts

router = APIRouter(
    prefix="/api/admin", dependencies=[Depends(require_principal), Depends(require_admin)], tags=["admin"]
)
Admin = Annotated[Principal, Depends(require_admin)]


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def cut_off_user(request: Request, user_id: str) -> None:
    """End everything the user has running: /v1 streams and stored-conversation replies."""
    request.app.state.cutoffs.cut(user_id=user_id)
    conversations = request.app.state.conversations
    if conversations is not None:
        for reply in conversations.hub.for_owner(user_id):
            reply.stop("stopped")


@router.get("/users")
def list_users(request: Request) -> UserList:
    return UserList(data=[UserOut.model_validate(u) for u in _accounts(request).list_users()])


@router.post("/users", status_code=201)
async def create_user(body: UserCreate, request: Request, admin: Admin) -> UserOut:
    if admin.via == "open":
        # The first account ends local mode; it must be an administrator who takes over the
        # conversations so far, which is what setup does.
        raise ConflictError(
            "There are no accounts yet: create the first administrator with the setup link `mingyan serve` "
            "printed, or `mingyan users create NAME --admin`.",
            code="setup_required",
        )
    user = await asyncio.to_thread(_accounts(request).create_user, body.username, body.password, role=body.role)
    await audit(request, admin, "user_created", user.username, role=user.role)
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}")
async def update_user(user_id: str, body: UserUpdate, request: Request, admin: Admin) -> UserOut:
    """Change role, disable or enable (disabling ends their sessions, keys and running streams at
    once), or reset the password."""
    accounts = _accounts(request)
    user = await asyncio.to_thread(accounts.get_user, user_id)
    if body.role is not None and body.role != user.role:
        user = await asyncio.to_thread(accounts.set_role, user_id, body.role)
        await audit(request, admin, "role_changed", user.username, role=body.role)
    if body.disabled is not None and body.disabled != user.disabled:
        user = await asyncio.to_thread(accounts.set_disabled, user_id, body.disabled)
        if body.disabled:
            cut_off_user(request, user_id)
        await audit(request, admin, "user_disabled" if body.disabled else "user_enabled", user.username)
    if body.password is not None:
        await asyncio.to_thread(accounts.reset_password, user_id, body.password)
        await audit(request, admin, "password_changed", user.username, reset_by_admin=True)
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: str, request: Request, admin: Admin) -> Response:
    """Delete the user with their conversations, sessions and keys; their running streams end."""
    accounts = _accounts(request)
    user = await asyncio.to_thread(accounts.get_user, user_id)
    cut_off_user(request, user_id)
    conversations = request.app.state.conversations
    if conversations is not None:
        for reply in conversations.hub.for_owner(user_id):
            await reply.wait()
    gone = await asyncio.to_thread(accounts.delete_user, user_id)
    await asyncio.to_thread(request.app.state.chat.engine.forget, user_id)  # their saved KV states
    await audit(request, admin, "user_deleted", user.username, conversations=gone)
    return Response(status_code=204)


@router.get("/users/{user_id}/quota")
def get_quota(user_id: str, request: Request) -> QuotaOut:
    accounts = _accounts(request)
    accounts.get_user(user_id)
    overrides = accounts.get_quota_overrides(user_id)
    effective = accounts.get_quota(user_id, request.app.state.meter.defaults)
    return QuotaOut(
        overrides=Limits.model_validate(overrides, from_attributes=True),
        effective=Limits.model_validate(effective, from_attributes=True),
    )


@router.put("/users/{user_id}/quota")
async def set_quota(user_id: str, body: Limits, request: Request, admin: Admin) -> QuotaOut:
    """The user's own limits; a null value means the server default."""
    accounts = _accounts(request)
    user = await asyncio.to_thread(accounts.get_user, user_id)
    await asyncio.to_thread(accounts.set_quota, user_id, **body.model_dump())
    await audit(request, admin, "quota_changed", user.username, **body.model_dump())
    return get_quota(user_id, request)


@router.get("/usage")
def all_usage(request: Request, since: Annotated[datetime | None, Query()] = None) -> UsageReport:
    totals = _accounts(request).usage_totals(since=since)
    return UsageReport(since=since, data=[UsageTotalOut.model_validate(t) for t in totals])


@router.get("/audit")
def audit_log(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: PageOffset = 0,
    event: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditLog:
    """Security events, newest first (append-only: nothing here can change or remove them)."""
    entries = _accounts(request).audit_events(limit + 1, offset, event)
    return AuditLog(data=[AuditEntryOut.model_validate(e) for e in entries[:limit]], has_more=len(entries) > limit)
