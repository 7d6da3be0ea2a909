"""/api/admin/moderation/banks: administrators read and edit the keyword banks. Each edit is a new
version, stored, in force at once, and audited with what it added and removed."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from mingyan.api.audit import audit
from mingyan.api.auth import Principal, require_admin, require_principal
from mingyan.api.context import AppContext, context
from mingyan.api.schemas.safety import BankHistory, BankList, BankOut, BankUpdate, BankVersionOut
from mingyan.errors import InvalidRequestError
from mingyan.safety.bank_sync import BankSync
from mingyan.safety.banks import shipped_banks
from mingyan.safety.moderator import Moderator
from mingyan.safety.policy import CATEGORIES
from mingyan.store.errors import NotFound
from mingyan.store.keyword_banks import BankStore

router = APIRouter(
    prefix="/api/admin/moderation", dependencies=[Depends(require_principal), Depends(require_admin)], tags=["admin"]
)
Admin = Annotated[Principal, Depends(require_admin)]


def load_edited_banks(ctx: AppContext) -> None:
    """At startup: the administrators' newest bank versions replace the shipped ones; `ctx.banks`
    then applies the edits other processes store (polled by api/shared_poll.py)."""
    if ctx.store is None or ctx.chat.safety is None:
        return
    ctx.banks = BankSync(ctx.chat.safety.moderator, BankStore(ctx.store.db))
    ctx.banks.load()


def _moderator(request: Request) -> Moderator:
    safety = context(request).chat.safety
    assert safety is not None, "the content policy is built with every app"
    return safety.moderator


def _category(category: str) -> str:
    if category not in CATEGORIES:
        raise NotFound(f"No keyword bank {category}; the banks are {', '.join(CATEGORIES)}.")
    return category


@router.get("/banks")
async def list_banks(request: Request) -> BankList:
    shipped = shipped_banks()
    banks = _moderator(request).banks
    return BankList(
        data=[
            BankOut(
                category=c,
                version=banks[c].version,
                source="shipped" if banks[c].phrases == shipped[c].phrases else "edited",
                phrases=list(banks[c].phrases),
            )
            for c in CATEGORIES
        ]
    )


@router.put("/banks/{category}")
async def edit_bank(category: str, body: BankUpdate, request: Request, admin: Admin) -> BankOut:
    moderator = _moderator(request)
    current = moderator.banks[_category(category)]
    try:
        edited = current.edited(body.phrases, "pending")  # checked before anything is stored
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="phrases") from exc
    store = BankStore(context(request).history().db)
    row = await asyncio.to_thread(
        store.add, category, list(edited.phrases), admin.user_id, shipped_version=shipped_banks()[category].version
    )
    banks = context(request).banks
    if banks is not None:  # in force here at once (and in other processes at their next poll)
        banks.apply(category, row.id, edited.phrases, row.version)
    else:
        moderator.replace_bank(current.edited(list(edited.phrases), row.version))
    added = sorted(set(edited.phrases) - set(current.phrases))
    removed = sorted(set(current.phrases) - set(edited.phrases))
    await audit(
        request, admin, "keyword_bank_changed", category, version=row.version, added=added[:50], removed=removed[:50]
    )
    return BankOut(category=category, version=row.version, source="edited", phrases=list(edited.phrases))


@router.get("/banks/{category}/versions")
async def bank_versions(category: str, request: Request) -> BankHistory:
    rows = await asyncio.to_thread(BankStore(context(request).history().db).history, _category(category))
    return BankHistory(data=[BankVersionOut.model_validate(r) for r in rows])
