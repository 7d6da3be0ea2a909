"""Who is asking: one rule for every route outside the public allow-list.

Credentials, in order:
1. a key in `Authorization: Bearer KEY` or `x-api-key: KEY` (exactly the same checks for both):
   the server's own `--api-key` (the operator, owner `local`), or a user's API key;
   a key that matches neither is refused — it never falls through to a cookie;
2. the login-session cookie; a state-changing request with it must also carry the CSRF token
   (`X-CSRF-Token` header, the value of the `mingyan_csrf` cookie);
3. nothing (or a key that means nothing): allowed only while the server has no accounts and no
   `--api-key` (local single-user mode, which `serve` allows on loopback only), as the owner `local`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from mingyan.accounts.principal import LOCAL_OWNER, Principal
from mingyan.api.context import context
from mingyan.store.accounts.account_store import AccountStore

SESSION_COOKIE = "mingyan_session"
CSRF_COOKIE = "mingyan_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


OPEN = Principal(LOCAL_OWNER, LOCAL_OWNER, "admin", "open")


def _open(accounts: AccountStore | None, server_key_hash: bytes | None) -> bool:
    """Local single-user mode: no server key and no accounts."""
    return server_key_hash is None and (accounts is None or accounts.users.count_users() == 0)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def identify(request: Request, accounts: AccountStore | None, server_key_hash: bytes | None) -> Principal:
    """The request's principal, or an HTTPException (401 / 403). Blocking: run it in a thread."""
    key = presented_key(request)
    if key is not None:
        if server_key_hash is not None and hmac.compare_digest(hash_key(key), server_key_hash):
            return Principal(LOCAL_OWNER, LOCAL_OWNER, "admin", "server_key")
        found = accounts.keys.resolve_key(key) if accounts is not None else None
        if found is not None:
            user, api_key = found
            return Principal(user.id, user.username, user.role, "api_key", key=api_key)
        if _open(accounts, server_key_hash):
            return OPEN  # clients such as openai's always send some key; with no accounts it means nothing
        raise unauthorized("Invalid API key (revoked, or its account is disabled).")
    token = request.cookies.get(SESSION_COOKIE)
    if token and accounts is not None:
        found_session = accounts.users.resolve_session(token)
        if found_session is not None:
            user, session = found_session
            if request.method not in SAFE_METHODS:
                csrf = request.headers.get(CSRF_HEADER, "")
                if not csrf or not accounts.users.check_csrf(session, csrf):
                    raise HTTPException(403, "Missing or invalid CSRF token: send the X-CSRF-Token header.")
            return Principal(user.id, user.username, user.role, "session", session=session)
    if _open(accounts, server_key_hash):
        return OPEN
    raise unauthorized(
        "Authentication required: sign in, or send an API key as 'Authorization: Bearer KEY' or 'x-api-key: KEY'."
    )


async def require_principal(request: Request) -> Principal:
    """Dependency of every non-public route; the principal is kept on `request.state`."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    state = context(request)
    principal = await asyncio.to_thread(identify, request, state.accounts, state.api_key_hash)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


async def refusal_before_validation(request: Request) -> HTTPException | None:
    """For a request whose input was refused (a body that is not JSON is refused before any
    dependency runs): the 401/403 its route's credentials check gives, if it needs one and fails.
    Missing credentials are the first thing a caller is told, whatever else is wrong."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        dependant = stack.pop()
        if dependant.call is require_principal:
            try:
                await require_principal(request)
            except HTTPException as refused:
                return refused
            return None
        stack.extend(dependant.dependencies)
    return None


async def require_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "This needs an administrator.")
    return principal


async def current_owner(principal: CurrentPrincipal) -> str:
    """Who owns the conversations this request reads and writes."""
    return principal.user_id


Owner = Annotated[str, Depends(current_owner)]


def client_identity(request: Request, principal: Principal, claimed_user: str | None) -> str:
    """Whom the engine should be fair to: the account, else (local mode) the API key, the body's
    `user` field (OpenAI's end-user id), or the client address."""
    if principal.has_account:
        return "user:" + principal.user_id
    key = presented_key(request)
    if key:
        return "key:" + hash_key(key).hex()[:16]
    if claimed_user:
        return "end-user:" + claimed_user[:128]
    return "ip:" + (request.client.host if request.client else "unknown")
