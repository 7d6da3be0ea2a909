"""One way for routes to append to the audit log (through the account service)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from mingyan.accounts.principal import Principal
from mingyan.accounts.service import Actor
from mingyan.api.context import context


async def audit(request: Request, principal: Principal, event: str, target: str = "", **details: Any) -> None:
    """Append `event` done by `principal` (the local operator is named by how they came in)."""
    service = context(request).account_service
    if service is None:
        return
    await service.audit(Actor(principal, request.client.host if request.client else None), event, target, **details)
