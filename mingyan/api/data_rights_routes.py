"""A user's right to erasure: deleting their own account, with everything of theirs
(conversations and messages, search entries, reports they made, sessions, keys, quota, saved KV
states). Usage totals stay, without the account's id, as when an administrator deletes a user."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request, Response
from starlette.exceptions import HTTPException

from mingyan.accounts.service import Actor
from mingyan.api.auth import CSRF_COOKIE, SESSION_COOKIE, CurrentPrincipal, require_principal
from mingyan.api.context import context
from mingyan.api.schemas.safety import AccountDeletion
from mingyan.store.reports import ReportStore

router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["accounts"])


@router.post("/auth/delete-account", status_code=204)
async def delete_own_account(body: AccountDeletion, request: Request, principal: CurrentPrincipal) -> Response:
    """The signed-in user deletes their account after confirming their password."""
    if not principal.has_account:
        raise HTTPException(403, "Only an account can be deleted; this server is used without accounts.")
    ctx = context(request)
    users = ctx.account_store().users
    user = await asyncio.to_thread(users.get_user, principal.user_id)
    confirmed = await asyncio.to_thread(users.authenticate, user.username, body.password)
    if confirmed is None or confirmed.id != user.id:
        raise HTTPException(403, "The password is wrong.")
    actor = Actor(user, request.client.host if request.client else None)  # by id and name: the row goes
    await ctx.accounts_service().delete_user(actor, user.id)  # conflict if the last administrator
    await asyncio.to_thread(ReportStore(ctx.history()).delete_by_reporter, user.id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
