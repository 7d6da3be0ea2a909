"""/api routes of content safety for signed-in users: the AI-label options the page needs."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from mingyan.api.auth import require_principal
from mingyan.api.context import Ctx
from mingyan.api.schemas.safety import LabelOptions

router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["safety"])


@router.get("/labels")
async def label_options(ctx: Ctx) -> LabelOptions:
    """The provider named in AI-generated labels, and whether copied replies carry the notice."""
    return LabelOptions(provider=ctx.settings.ai_provider, on_copy=ctx.settings.ai_label_on_copy)
