"""One way for routes to append to the audit log."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request

from mingyan.api.auth import Principal


async def audit(request: Request, principal: Principal, event: str, target: str = "", **details: Any) -> None:
    """Append `event` done by `principal` (the local operator is named by how they came in)."""
    accounts = request.app.state.accounts
    if accounts is None:
        return
    ip = request.client.host if request.client else None

    def write() -> None:
        # A user is recorded by id and name (the name stays readable after the user is deleted).
        actor = accounts.users.get_user(principal.user_id) if principal.has_account else principal.via
        accounts.ledger.audit(event, actor=actor, target=target, ip=ip, **details)

    await asyncio.to_thread(write)
