"""/api/search, /api/export, /api/import: a user's whole history. Parse, call the store, serialize."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from mingyan.api.auth import current_owner, require_api_key
from mingyan.api.schemas import SearchHitOut, SearchResults
from mingyan.errors import InvalidRequestError
from mingyan.store import search as store_search

router = APIRouter(prefix="/api", dependencies=[Depends(require_api_key)], tags=["history"])
Owner = Annotated[str, Depends(current_owner)]


@router.get("/search")
def search(
    request: Request, owner: Owner,
    q: Annotated[str, Query(max_length=store_search.MAX_QUERY_CHARS)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SearchResults:
    """Messages and titles holding every word of `q` (Chinese or English), newest first."""
    try:
        hits = store_search.search(request.app.state.store, owner, q, limit=limit + 1, offset=offset)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="q") from exc
    return SearchResults(data=[SearchHitOut.model_validate(h) for h in hits[:limit]], has_more=len(hits) > limit)
