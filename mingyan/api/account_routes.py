"""/api/auth (sign in and out, first-run setup, password), /api/keys, /api/usage: the caller's own account.

Login sessions are an HttpOnly, SameSite=Strict cookie; the CSRF token is a second cookie the page
reads and sends back as `X-CSRF-Token` on every state-changing request. Failed sign-ins are
audited and throttled per client address and username, and per address (accounts/throttle.py).
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.exceptions import HTTPException

from mingyan.accounts.throttle import LoginThrottle
from mingyan.api.audit import audit
from mingyan.api.auth import (
    CSRF_COOKIE,
    LOCAL_OWNER,
    SESSION_COOKIE,
    CurrentPrincipal,
    hash_key,
    require_principal,
)
from mingyan.api.schemas import (
    AuthStatus,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    Limits,
    LoginRequest,
    PasswordChange,
    SessionOut,
    SetupRequest,
    UsageReport,
    UsageTotalOut,
    UserOut,
)
from mingyan.store.account_types import User
from mingyan.store.accounts import Accounts
from mingyan.store.errors import AuthFailed, Conflict

public = APIRouter(prefix="/api/auth", tags=["accounts"])
router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["accounts"])

def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _sign_in(request: Request, response: Response, user: User) -> SessionOut:
    settings = request.app.state.settings
    ttl_s = settings.session_hours * 3600
    token, csrf = await asyncio.to_thread(
        _accounts(request).create_session, user.id, ttl_s=ttl_s, ip=_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, token, max_age=ttl_s, httponly=True, samesite="strict", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl_s, httponly=False, samesite="strict", secure=secure, path="/")
    return SessionOut(user=UserOut.model_validate(user), via="session", csrf_token=csrf)


# ---- public: status, setup, login -------------------------------------------------------------


@public.get("/status")
def auth_status(request: Request) -> AuthStatus:
    has_accounts = _accounts(request).count_users() > 0
    return AuthStatus(accounts=has_accounts, setup_required=not has_accounts and request.app.state.setup_hash is not None)


@public.post("/setup")
async def setup(body: SetupRequest, request: Request, response: Response) -> SessionOut:
    """First run: create the first administrator with the token `serve` printed. Their account takes
    over the conversations made before accounts existed (owner `local`)."""
    accounts, expected = _accounts(request), request.app.state.setup_hash
    if expected is None or not hmac.compare_digest(hash_key(body.token), expected):
        raise HTTPException(403, "Invalid setup token: use the link `mingyan serve` printed at startup.")
    request.app.state.setup_hash = None  # consumed before anything awaits: a concurrent setup gets 403
    try:  # and the database makes the first user only while there is none (another process may race)
        user = await asyncio.to_thread(accounts.create_user, body.username, body.password, role="admin", first=True)
    except Exception as exc:
        if not isinstance(exc, Conflict):
            request.app.state.setup_hash = expected  # nothing was made (a bad name): the token still works
        raise
    adopted = await asyncio.to_thread(request.app.state.store.transfer_owner, LOCAL_OWNER, user.id)
    await asyncio.to_thread(accounts.audit, "user_created", actor=user, target=user.username, ip=_address(request),
                     role="admin", setup=True, adopted_conversations=adopted)
    return await _sign_in(request, response, user)


@public.post("/login")
async def login(body: LoginRequest, request: Request, response: Response) -> SessionOut:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = _address(request)
    attempt = throttle.reserve(address, body.username)  # counted now: a failure needs nothing more
    accounts = _accounts(request)
    user = await asyncio.to_thread(accounts.authenticate, body.username, body.password)
    if user is None:
        await asyncio.to_thread(accounts.audit, "login_failed", target=body.username[:64], ip=address)
        raise HTTPException(401, "Wrong username or password, or the account is disabled.")
    throttle.succeeded(attempt)
    await asyncio.to_thread(accounts.audit, "login", actor=user, target=user.username, ip=address)
    return await _sign_in(request, response, user)


# ---- signed in ---------------------------------------------------------------------------------


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, principal: CurrentPrincipal) -> Response:
    response = Response(status_code=204)
    token = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and token:
        accounts = _accounts(request)
        await asyncio.to_thread(accounts.delete_session, token)
        await audit(request, principal, "logout", principal.username)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/auth/me")
def me(request: Request, principal: CurrentPrincipal) -> SessionOut:
    if principal.has_account:
        user = _accounts(request).get_user(principal.user_id)
        return SessionOut(user=UserOut.model_validate(user), via=principal.via)
    epoch = datetime.fromtimestamp(request.app.state.started).astimezone()
    local = UserOut(id=LOCAL_OWNER, username=LOCAL_OWNER, role="admin", disabled=False, created_at=epoch, updated_at=epoch)
    return SessionOut(user=local, via=principal.via)


@router.post("/auth/password", status_code=204)
async def change_password(body: PasswordChange, request: Request, principal: CurrentPrincipal) -> Response:
    """Other sign-ins of this account end; this one stays."""
    _need_account(principal)
    accounts = _accounts(request)
    keep = principal.session.id if principal.session else None
    try:
        await asyncio.to_thread(accounts.set_password, principal.user_id, body.current_password, body.new_password,
                         keep_session=keep)
    except AuthFailed as exc:
        raise HTTPException(403, "The current password is wrong.") from exc
    await audit(request, principal, "password_changed", principal.username)
    return Response(status_code=204)


@router.get("/keys")
def list_keys(request: Request, principal: CurrentPrincipal) -> KeyList:
    _need_account(principal)
    return KeyList(data=[KeyOut.model_validate(k) for k in _accounts(request).list_keys(principal.user_id)])


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, request: Request, principal: CurrentPrincipal) -> KeyCreated:
    """A new API key; its value is in this answer only."""
    _need_account(principal)
    accounts = _accounts(request)
    key, plaintext = await asyncio.to_thread(accounts.create_key, principal.user_id, body.name, **body.limits.model_dump())
    await audit(request, principal, "key_created", key.id, name=key.name)
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=plaintext)


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, principal: CurrentPrincipal) -> KeyOut:
    """Revoke a key: requests with it fail from now on, and its running /v1 streams stop."""
    _need_account(principal)
    accounts = _accounts(request)
    key = await asyncio.to_thread(accounts.revoke_key, principal.user_id, key_id)
    request.app.state.cutoffs.cut(key_id=key.id)
    await audit(request, principal, "key_revoked", key.id)
    return KeyOut.model_validate(key)


@router.patch("/keys/{key_id}")
async def set_key_limits(key_id: str, body: Limits, request: Request, principal: CurrentPrincipal) -> KeyOut:
    """A key's own limits (null: the account's apply). They take effect with the next request."""
    _need_account(principal)
    key = await asyncio.to_thread(_accounts(request).set_key_limits, principal.user_id, key_id, **body.model_dump())
    await audit(request, principal, "quota_changed", key.id, **body.model_dump())
    return KeyOut.model_validate(key)


@router.get("/usage")
def my_usage(
    request: Request, principal: CurrentPrincipal, since: Annotated[datetime | None, Query()] = None
) -> UsageReport:
    """The caller's own usage (all time, or since a moment)."""
    _need_account(principal)
    totals = _accounts(request).usage_totals(user_id=principal.user_id, since=since)
    return UsageReport(since=since, data=[UsageTotalOut.model_validate(t) for t in totals])


def _need_account(principal) -> None:
    if not principal.has_account:
        raise HTTPException(400, "This needs a user account (the server has none yet, or you used the server key).")
