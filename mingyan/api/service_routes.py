"""/health (public: is the server up, what is it doing) and /metrics (Prometheus, administrators)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from mingyan.api.auth import require_admin, require_principal
from mingyan.api.context import context
from mingyan.api.schemas import Health

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> Health:
    service = context(request).chat
    stats = service.engine.stats()
    return Health(
        model=service.model_name,
        active_requests=stats.active,
        queued_requests=stats.queued,
        generated_tokens_total=stats.generated_tokens_total,
    )


@router.get("/metrics", dependencies=[Depends(require_principal), Depends(require_admin)], include_in_schema=False)
async def metrics(request: Request) -> Response:
    body = context(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
