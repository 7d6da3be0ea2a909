"""/api/search, /api/export, /api/import: a user's whole history. Parse, call the store, serialize."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from mingyan.api.audit import audit
from mingyan.api.auth import CurrentPrincipal, Owner, require_principal
from mingyan.api.content_screens import import_screen
from mingyan.api.context import context
from mingyan.api.schemas import ImportResultOut, PageOffset, SearchHitOut, SearchResults
from mingyan.errors import InvalidRequestError
from mingyan.store import search as store_search
from mingyan.store.transfer import mingyan_json as transfer

router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["history"])


@router.get("/search")
def search(
    request: Request,
    owner: Owner,
    q: Annotated[str, Query(max_length=store_search.MAX_QUERY_CHARS)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: PageOffset = 0,
) -> SearchResults:
    """Messages and titles holding every word of `q` (Chinese or English), newest first."""
    try:
        hits = store_search.search(context(request).history(), owner, q, limit=limit + 1, offset=offset)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="q") from exc
    return SearchResults(data=[SearchHitOut.model_validate(h) for h in hits[:limit]], has_more=len(hits) > limit)


@router.get("/export")
async def export_all(
    request: Request,
    principal: CurrentPrincipal,
    conversation_id: Annotated[list[str] | None, Query(max_length=1000)] = None,
) -> Response:
    """Lossless JSON of the user's conversations (all, or those named), every branch included."""
    store = context(request).history()
    body = await asyncio.to_thread(transfer.export_json, store, principal.user_id, conversation_id)
    await audit(request, principal, "export", "all" if conversation_id is None else ",".join(conversation_id)[:200])
    return _download(body, "application/json", f"mingyan-{datetime.now(UTC):%Y%m%d-%H%M%S}.json")


@router.get("/conversations/{conversation_id}/export")
async def export_one(
    conversation_id: str,
    request: Request,
    principal: CurrentPrincipal,
    format: Literal["json", "markdown"] = "json",
) -> Response:
    store, owner = context(request).history(), principal.user_id
    if format == "markdown":
        text = await asyncio.to_thread(transfer.export_markdown, store, owner, conversation_id)
        body, media_type, name = text.encode("utf-8"), "text/markdown; charset=utf-8", f"{conversation_id}.md"
    else:
        body = await asyncio.to_thread(transfer.export_json, store, owner, [conversation_id])
        media_type, name = "application/json", f"{conversation_id}.json"
    await audit(request, principal, "export", conversation_id, format=format)
    return _download(body, media_type, name)


@router.post("/import", status_code=201)
async def import_history(request: Request, owner: Owner) -> ImportResultOut:
    """A mingyan export or ChatGPT's conversations.json, as the raw request body. All or nothing:
    a file with any problem is refused with 400 saying where, and nothing is written."""
    data = await request.body()
    screen = import_screen(context(request).chat, owner)  # the content policy: nothing written if blocked
    result = await asyncio.to_thread(transfer.import_file, context(request).history(), owner, data, screen=screen)
    return ImportResultOut.model_validate(result, from_attributes=True)


def _download(body: bytes, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
