"""API-key check for the OpenAI-compatible routes (Bearer or x-api-key, same rule for both)."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request
from starlette.exceptions import HTTPException


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


async def require_api_key(request: Request) -> None:
    """Dependency: when the server has a key, every request must present it."""
    expected: bytes | None = request.app.state.api_key_hash
    if expected is None:
        return
    key = presented_key(request)
    if key is None or not hmac.compare_digest(hash_key(key), expected):
        raise HTTPException(
            401,
            "Missing or invalid API key: send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def client_identity(request: Request, claimed_user: str | None) -> str:
    """Whom the engine should be fair to: the API key if one is used, else the `user`
    field of the body (OpenAI's end-user id), else the client address."""
    key = presented_key(request)
    if key:
        return "key:" + hash_key(key).hex()[:16]
    if claimed_user:
        return "user:" + claimed_user[:128]
    return "ip:" + (request.client.host if request.client else "unknown")


LOCAL_OWNER = "local"


async def current_owner(request: Request) -> str:
    """Who owns the conversations this request reads and writes.

    Until accounts exist, every client of a server (all holding its one API key, or on loopback)
    is the same single user, `local`.
    """
    del request
    return LOCAL_OWNER
