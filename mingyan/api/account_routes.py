"""/api/auth (sign in and out, first-run setup, password), /api/keys, /api/usage: the caller's own account.

Login sessions are an HttpOnly, SameSite=Strict cookie; the CSRF token is a second cookie the page
reads and sends back as `X-CSRF-Token` on every state-changing request. Failed sign-ins are
audited and throttled per client address and username.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import deque
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.exceptions import HTTPException

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
from mingyan.errors import EngineBusyError
from mingyan.store.account_types import User
from mingyan.store.accounts import Accounts
from mingyan.store.errors import AuthFailed

public = APIRouter(prefix="/api/auth", tags=["accounts"])
router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["accounts"])

FAILED_LOGIN_LIMIT = 10  # per client address and username, per window
FAILED_LOGIN_WINDOW_S = 15 * 60


class LoginThrottle:
    """Refuses sign-ins for an (address, username) pair after too many recent failures."""

    def __init__(self, limit: int = FAILED_LOGIN_LIMIT, window_s: float = FAILED_LOGIN_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def check(self, address: str, username: str) -> None:
        recent = self._recent(address, username)
        if len(recent) >= self.limit:
            wait = self.window_s - (time.monotonic() - recent[0])
            raise EngineBusyError("Too many failed sign-ins; try again later.", retry_after_s=wait)

    def failed(self, address: str, username: str) -> None:
        self._recent(address, username).append(time.monotonic())

    def succeeded(self, address: str, username: str) -> None:
        self._failures.pop((address, username.casefold()), None)

    def _recent(self, address: str, username: str) -> deque[float]:
        recent = self._failures.setdefault((address, username.casefold()), deque())
        while recent and time.monotonic() - recent[0] >= self.window_s:
            recent.popleft()
        return recent


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
    setup_required = not has_accounts and request.app.state.setup_hash is not None
    return AuthStatus(accounts=has_accounts, setup_required=setup_required)


@public.post("/setup")
async def setup(body: SetupRequest, request: Request, response: Response) -> SessionOut:
    """First run: create the first administrator with the token `serve` printed. Their account takes
    over the conversations made before accounts existed (owner `local`)."""
    accounts, expected = _accounts(request), request.app.state.setup_hash
    if expected is None or not hmac.compare_digest(hash_key(body.token), expected):
        raise HTTPException(403, "Invalid setup token: use the link `mingyan serve` printed at startup.")
    if await asyncio.to_thread(accounts.count_users) > 0:
        raise HTTPException(409, "Setup is done already: sign in instead.")
    user = await asyncio.to_thread(accounts.create_user, body.username, body.password, role="admin")
    adopted = await asyncio.to_thread(request.app.state.store.transfer_owner, LOCAL_OWNER, user.id)
    await asyncio.to_thread(accounts.audit, "user_created", actor=user, target=user.username, ip=_address(request),
                     role="admin", setup=True, adopted_conversations=adopted)
    request.app.state.setup_hash = None
    return await _sign_in(request, response, user)


@public.post("/login")
async def login(body: LoginRequest, request: Request, response: Response) -> SessionOut:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = _address(request)
    throttle.check(address, body.username)
    accounts = _accounts(request)
    user = await asyncio.to_thread(accounts.authenticate, body.username, body.password)
    if user is None:
        throttle.failed(address, body.username)
        await asyncio.to_thread(accounts.audit, "login_failed", target=body.username[:64], ip=address)
        raise HTTPException(401, "Wrong username or password, or the account is disabled.")
    throttle.succeeded(address, body.username)
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
    local = UserOut(id=LOCAL_OWNER, username=LOCAL_OWNER, role="admin", disabled=False,
                    created_at=epoch, updated_at=epoch)
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
    limits = body.limits.model_dump()
    key, plaintext = await asyncio.to_thread(accounts.create_key, principal.user_id, body.name, **limits)
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
