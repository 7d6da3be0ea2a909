"""/api/admin: users, their quotas, everyone's usage, the audit log. Administrators only."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from mingyan.accounts.service import AccountService, Actor
from mingyan.api.auth import Principal, require_admin, require_principal
from mingyan.api.context import context
from mingyan.api.schemas import (
    AuditEntryOut,
    AuditLog,
    Limits,
    PageOffset,
    QuotaOut,
    UsageReport,
    UsageTotalOut,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)
from mingyan.errors import ConflictError

router = APIRouter(
    prefix="/api/admin", dependencies=[Depends(require_principal), Depends(require_admin)], tags=["admin"]
)
Admin = Annotated[Principal, Depends(require_admin)]


def _service(request: Request) -> AccountService:
    return context(request).accounts_service()


def _actor(request: Request, admin: Principal) -> Actor:
    return Actor(admin, request.client.host if request.client else None)


@router.get("/users")
def list_users(request: Request) -> UserList:
    return UserList(data=[UserOut.model_validate(u) for u in _service(request).store.users.list_users()])


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
    user = await _service(request).create_user(_actor(request, admin), body.username, body.password, role=body.role)
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}")
async def update_user(user_id: str, body: UserUpdate, request: Request, admin: Admin) -> UserOut:
    """Change role, disable or enable (disabling ends their sessions, keys and running streams at
    once), or reset the password."""
    service, actor = _service(request), _actor(request, admin)
    user = await asyncio.to_thread(service.store.users.get_user, user_id)
    if body.role is not None and body.role != user.role:
        user = await service.set_role(actor, user_id, body.role)
    if body.disabled is not None and body.disabled != user.disabled:
        user = await service.set_disabled(actor, user_id, body.disabled)
    if body.password is not None:
        await service.reset_password(actor, user_id, body.password)
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: str, request: Request, admin: Admin) -> Response:
    """Delete the user with their conversations, sessions and keys; their running streams end."""
    await _service(request).delete_user(_actor(request, admin), user_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/quota")
async def get_quota(user_id: str, request: Request) -> QuotaOut:
    view = await asyncio.to_thread(_service(request).quota, user_id)
    return QuotaOut(
        overrides=Limits.model_validate(view.overrides, from_attributes=True),
        effective=Limits.model_validate(view.effective, from_attributes=True),
    )


@router.put("/users/{user_id}/quota")
async def set_quota(user_id: str, body: Limits, request: Request, admin: Admin) -> QuotaOut:
    """The user's own limits; a null value means the server default."""
    await _service(request).set_quota(_actor(request, admin), user_id, **body.model_dump())
    return await get_quota(user_id, request)


@router.get("/usage")
def all_usage(request: Request, since: Annotated[datetime | None, Query()] = None) -> UsageReport:
    totals = _service(request).store.ledger.usage_totals(since=since)
    return UsageReport(since=since, data=[UsageTotalOut.model_validate(t) for t in totals])


@router.get("/audit")
def audit_log(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: PageOffset = 0,
    event: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditLog:
    """Security events, newest first (append-only: nothing here can change or remove them)."""
    entries = _service(request).store.ledger.audit_events(limit + 1, offset, event)
    return AuditLog(data=[AuditEntryOut.model_validate(e) for e in entries[:limit]], has_more=len(entries) > limit)
