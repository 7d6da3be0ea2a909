"""/health (public: is the server up, what is it doing) and /metrics (Prometheus, administrators)."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends, Request, Response

from mingyan.api.auth import require_admin, require_principal
from mingyan.api.context import context
from mingyan.api.replica_metrics import replica_status
from mingyan.api.schemas import Health

router = APIRouter()


@router.get("/health", responses={503: {"model": Health, "description": "draining before shutdown"}})
async def health(request: Request, response: Response) -> Health:
    ctx = context(request)
    stats = ctx.chat.engine.stats()
    draining = ctx.drain is not None and ctx.drain.draining
    if draining:
        response.status_code = 503  # load balancers take a draining server out of rotation
    return Health(
        status="draining" if draining else "ok",
        model=ctx.chat.model_name,
        active_requests=stats.active,
        queued_requests=stats.queued,
        generated_tokens_total=stats.generated_tokens_total,
        engine_errors_total=stats.errors_total,
        last_engine_error=stats.last_error,
        models=[dataclasses.asdict(s) for s in ctx.models.status()] if ctx.models is not None else None,
        replicas=replica_status(ctx.chat.engine),
    )


@router.get("/metrics", dependencies=[Depends(require_principal), Depends(require_admin)], include_in_schema=False)
async def metrics(request: Request) -> Response:
    body = context(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
