"""Which chat service answers a request: the one of the model it names (several models served by a
ModelRouter, loaded here on first use, off the event loop), or the server's only model."""

from __future__ import annotations

import asyncio

from mingyan.api.context import AppContext
from mingyan.api.schemas import ModelCard
from mingyan.chat.service import ChatService
from mingyan.errors import InvalidRequestError
from mingyan.serving.upstream import UpstreamEngine


async def chat_for(ctx: AppContext, model: str | None) -> ChatService:
    """The chat service of `model` (None or empty: the server's first model), its model loaded
    first if needed. A model not served here is a 400 `model_not_found`."""
    name = served_chat_model(ctx, model or None)
    if name == ctx.chat.model_name:
        return ctx.chat
    router = ctx.models
    assert router is not None  # served_chat_model knows only the first model without one
    await asyncio.to_thread(router.load, name)
    return ctx.chat.sibling(router.handle(name))


def upstream_of(ctx: AppContext, service: ChatService) -> UpstreamEngine | None:
    """The upstream engine behind `service`'s model, when another server runs it."""
    if ctx.models is None:
        return None
    engine = dict(ctx.models.loaded()).get(service.model_name)
    return engine if isinstance(engine, UpstreamEngine) else None


def served_chat_model(ctx: AppContext, model: str | None) -> str:
    """`model` when it is a chat model served here (None: the first one); else a 400 `model_not_found`."""
    if model is None or model == ctx.chat.model_name:
        return ctx.chat.model_name
    if ctx.models is None:
        raise InvalidRequestError(
            f"The model '{model}' is not served here; this server runs '{ctx.chat.model_name}'.",
            param="model",
            code="model_not_found",
        )
    return ctx.models.handle(model).name


def model_cards(ctx: AppContext) -> list[ModelCard]:
    """The chat models served, with their state (loaded, loading, unloaded, error) when there are several."""
    router = ctx.models
    if router is None:
        first = ctx.chat.engine.info
        return [ModelCard(id=first.name, created=ctx.started, context_length=first.n_ctx)]
    cards = []
    for status in router.status():
        info = router.info_of(status.name)
        cards.append(
            ModelCard(
                id=status.name,
                created=ctx.started,
                context_length=info.n_ctx if info else None,
                status=status.state,
                loading_s=round(status.loading_s, 2) if status.state == "loading" and status.loading_s else None,
            )
        )
    return cards
