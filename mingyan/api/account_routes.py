"""/api/auth (sign in and out, first-run setup, password), /api/keys, /api/usage: the caller's own account.

Login sessions are an HttpOnly, SameSite=Strict cookie; the CSRF token is a second cookie the page
reads and sends back as `X-CSRF-Token` on every state-changing request. Failed sign-ins are
audited and throttled per client address and username.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.exceptions import HTTPException

from mingyan.accounts.principal import Principal
from mingyan.accounts.service import AccountService, Actor, SetupRefused
from mingyan.api.auth import (
    CSRF_COOKIE,
    LOCAL_OWNER,
    SESSION_COOKIE,
    CurrentPrincipal,
    require_principal,
)
from mingyan.api.context import context
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
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.types import User
from mingyan.store.errors import AuthFailed

public = APIRouter(prefix="/api/auth", tags=["accounts"])
router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["accounts"])


def _accounts(request: Request) -> AccountStore:
    return context(request).account_store()


def _service(request: Request) -> AccountService:
    return context(request).accounts_service()


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal, _address(request))


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _sign_in(request: Request, response: Response, user: User) -> SessionOut:
    ttl_s = context(request).settings.session_hours * 3600
    token, csrf = await _service(request).start_session(
        user, ttl_s, ip=_address(request), user_agent=request.headers.get("user-agent")
    )
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, token, max_age=ttl_s, httponly=True, samesite="strict", secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl_s, httponly=False, samesite="strict", secure=secure, path="/")
    return SessionOut(user=UserOut.model_validate(user), via="session", csrf_token=csrf)


# ---- public: status, setup, login -------------------------------------------------------------


@public.get("/status")
def auth_status(request: Request) -> AuthStatus:
    service = _service(request)
    has_accounts = service.store.users.count_users() > 0
    return AuthStatus(accounts=has_accounts, setup_required=not has_accounts and service.setup_token.pending)


@public.post("/setup")
async def setup(body: SetupRequest, request: Request, response: Response) -> SessionOut:
    """First run: create the first administrator with the token `serve` printed. Their account takes
    over the conversations made before accounts existed (owner `local`)."""
    try:
        user = await _service(request).setup(body.token, body.username, body.password, ip=_address(request))
    except SetupRefused as exc:
        raise HTTPException(403, str(exc)) from exc
    return await _sign_in(request, response, user)


@public.post("/login")
async def login(body: LoginRequest, request: Request, response: Response) -> SessionOut:
    try:
        user = await _service(request).login(body.username, body.password, ip=_address(request))
    except AuthFailed as exc:
        raise HTTPException(401, str(exc)) from exc
    return await _sign_in(request, response, user)


# ---- signed in ---------------------------------------------------------------------------------


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, principal: CurrentPrincipal) -> Response:
    response = Response(status_code=204)
    token = request.cookies.get(SESSION_COOKIE)
    if principal.via == "session" and token:
        await _service(request).sign_out(_actor(request, principal), principal, token)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/auth/me")
def me(request: Request, principal: CurrentPrincipal) -> SessionOut:
    if principal.has_account:
        user = _accounts(request).users.get_user(principal.user_id)
        return SessionOut(user=UserOut.model_validate(user), via=principal.via)
    epoch = datetime.fromtimestamp(context(request).started).astimezone()
    local = UserOut(
        id=LOCAL_OWNER, username=LOCAL_OWNER, role="admin", disabled=False, created_at=epoch, updated_at=epoch
    )
    return SessionOut(user=local, via=principal.via)


@router.post("/auth/password", status_code=204)
async def change_password(body: PasswordChange, request: Request, principal: CurrentPrincipal) -> Response:
    """Other sign-ins of this account end; this one stays."""
    _need_account(principal)
    try:
        await _service(request).change_password(
            _actor(request, principal), principal, body.current_password, body.new_password
        )
    except AuthFailed as exc:
        raise HTTPException(403, "The current password is wrong.") from exc
    return Response(status_code=204)


@router.get("/keys")
def list_keys(request: Request, principal: CurrentPrincipal) -> KeyList:
    _need_account(principal)
    return KeyList(data=[KeyOut.model_validate(k) for k in _accounts(request).keys.list_keys(principal.user_id)])


@router.post("/keys", status_code=201)
async def create_key(body: KeyCreate, request: Request, principal: CurrentPrincipal) -> KeyCreated:
    """A new API key; its value is in this answer only."""
    _need_account(principal)
    key, plaintext = await _service(request).create_key(
        _actor(request, principal), principal.user_id, body.name, **body.limits.model_dump()
    )
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=plaintext)


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, principal: CurrentPrincipal) -> KeyOut:
    """Revoke a key: requests with it fail from now on, and its running /v1 streams stop."""
    _need_account(principal)
    key = await _service(request).revoke_key(_actor(request, principal), principal.user_id, key_id)
    return KeyOut.model_validate(key)


@router.patch("/keys/{key_id}")
async def set_key_limits(key_id: str, body: Limits, request: Request, principal: CurrentPrincipal) -> KeyOut:
    """A key's own limits (null: the account's apply). They take effect with the next request."""
    _need_account(principal)
    key = await _service(request).set_key_limits(
        _actor(request, principal), principal.user_id, key_id, **body.model_dump()
    )
    return KeyOut.model_validate(key)


@router.get("/usage")
def my_usage(
    request: Request, principal: CurrentPrincipal, since: Annotated[datetime | None, Query()] = None
) -> UsageReport:
    """The caller's own usage (all time, or since a moment)."""
    _need_account(principal)
    totals = _accounts(request).ledger.usage_totals(user_id=principal.user_id, since=since)
    return UsageReport(since=since, data=[UsageTotalOut.model_validate(t) for t in totals])


def _need_account(principal) -> None:
    if not principal.has_account:
        raise HTTPException(400, "This needs a user account (the server has none yet, or you used the server key).")
