"""POST /v1/moderations: the deployment's content policy, answered in OpenAI's shape."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from mingyan.api.auth import require_principal
from mingyan.api.context import Ctx
from mingyan.api.schemas import new_id
from mingyan.api.schemas.moderation import (
    MODEL_ALIASES,
    MODERATION_MODEL,
    OPENAI_CATEGORIES,
    ModerationRequest,
    ModerationResponse,
    ModerationResult,
)
from mingyan.errors import InvalidRequestError
from mingyan.safety.moderator import Moderator, Verdict
from mingyan.safety.policy import OPENAI_CATEGORY

router = APIRouter(prefix="/v1", dependencies=[Depends(require_principal)])


def openai_result(verdict: Verdict) -> ModerationResult:
    """mingyan's categories onto OpenAI's names (a sub-category marks its parent too)."""
    categories = dict.fromkeys(OPENAI_CATEGORIES, False)
    for category, hit in verdict.categories.items():
        if hit:
            name = OPENAI_CATEGORY[category]
            categories[name] = categories[name.split("/")[0]] = True
    scores = {name: 1.0 if hit else 0.0 for name, hit in categories.items()}
    applied = {name: ["text"] for name in categories}
    return ModerationResult(
        flagged=verdict.flagged, categories=categories, category_scores=scores, category_applied_input_types=applied
    )


@router.post("/moderations")
async def moderations(body: ModerationRequest, ctx: Ctx) -> ModerationResponse:
    if body.model is not None and body.model not in MODEL_ALIASES:
        raise InvalidRequestError(
            f"The moderation model '{body.model}' is not served here; use '{MODERATION_MODEL}'.",
            param="model",
            code="model_not_found",
        )
    safety = ctx.chat.safety
    moderator = safety.moderator if safety is not None else None

    def check(texts: list[str], moderator: Moderator | None) -> list[ModerationResult]:
        if moderator is None:
            return [openai_result(Verdict(False, {}, {}))] * len(texts)
        return [openai_result(moderator.check(text)) for text in texts]

    results = await asyncio.to_thread(check, body.inputs(), moderator)
    return ModerationResponse(id=new_id("modr"), model=MODERATION_MODEL, results=results)
