"""create_app(): builds the FastAPI application around an engine. No globals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI

from mingyan import __version__
from mingyan.accounts.metering import Cutoffs, Meter, default_quota
from mingyan.accounts.service import AccountService
from mingyan.accounts.setup import SetupToken
from mingyan.accounts.streams import RunningGenerations
from mingyan.accounts.throttle import LoginThrottle
from mingyan.api import (
    account_routes,
    admin_routes,
    bank_routes,
    conversation_routes,
    data_rights_routes,
    embedding_routes,
    history_routes,
    moderation_routes,
    openai_routes,
    report_routes,
    safety_routes,
    service_routes,
    web,
)
from mingyan.api.auth import hash_key
from mingyan.api.context import AppContext
from mingyan.api.drain import Drain, DrainGate
from mingyan.api.errors import install_error_handlers
from mingyan.api.metrics import Metrics
from mingyan.api.middleware import BodySizeLimit, NoSniff, RefuseNul
from mingyan.api.retention import start_retention
from mingyan.api.safety_record import SafetyRecorder
from mingyan.chat.conversations import ConversationService
from mingyan.chat.live import ReplyHub
from mingyan.chat.service import ChatService
from mingyan.config import Settings
from mingyan.engine.base import Embedder, Engine
from mingyan.safety.gate import Safety
from mingyan.safety.policy import Policy
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore


def create_app(
    settings: Settings,
    engine: Engine,
    metrics: Metrics | None = None,
    *,
    close_engine: bool = False,
    store: ConversationStore | None = None,
    setup_token: str | None = None,
    embedder: Embedder | None = None,
) -> FastAPI:
    """The app around `engine`. Pass the `Metrics` whose `observe` the engine reports to.

    With `close_engine`, the app closes the engine when it shuts down (the server's own engine:
    its KV states get saved before the process exits). `setup_token` enables the first-run setup
    (creating the first administrator) while the server has no accounts. `embedder` serves
    /v1/embeddings (closed with the engine under `close_engine`).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        retention = start_retention(ctx)  # --retention-days: expired conversations deleted hourly
        yield
        if retention is not None:
            retention.cancel()
        await stop_work()

    app = FastAPI(title="mingyan", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.context = ctx = build_context(
        settings, engine, metrics, store=store, setup_token=setup_token, embedder=embedder
    )
    stop_work = partial(_stop_work, ctx, engine if close_engine else None, embedder if close_engine else None)
    ctx.drain = Drain(settings.drain_timeout, idle=lambda: _idle(ctx), stop_work=stop_work)

    install_error_handlers(app)
    app.include_router(service_routes.router)
    app.include_router(openai_routes.router)
    app.include_router(embedding_routes.router)
    app.include_router(moderation_routes.router)
    if store is not None:
        app.include_router(conversation_routes.router)
        app.include_router(history_routes.router)
        app.include_router(account_routes.public)
        app.include_router(account_routes.router)
        app.include_router(admin_routes.router)
        app.include_router(safety_routes.router)
        app.include_router(report_routes.router)
        app.include_router(bank_routes.router)
        app.include_router(data_rights_routes.router)
        bank_routes.load_edited_banks(ctx)  # the administrators' keyword banks replace the shipped ones
        web.install(app)  # the web chat at /
    if settings.api_docs:
        web.install_api_docs(app)  # Swagger UI, vendored (the schema is at /openapi.json either way)

    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, paths={"/api/import": settings.max_import_bytes}
    )
    app.add_middleware(RefuseNul)
    app.add_middleware(NoSniff)
    app.add_middleware(DrainGate, drain=ctx.drain)  # outermost: a draining server refuses before anything
    return app


async def _stop_work(ctx: AppContext, engine: Engine | None, embedder: Embedder | None) -> None:
    """End what still runs: live replies saved `interrupted`, prompt preparation stopped; with the
    server's own `engine`, streams end with an error and the KV states are saved as the engine
    closes (and its embedder closes)."""
    if ctx.conversations is not None:
        await ctx.conversations.close()
    ctx.chat.workers.close()
    if engine is not None:
        await asyncio.to_thread(engine.close)
    if embedder is not None:
        await asyncio.to_thread(embedder.close)


def _idle(ctx: AppContext) -> bool:
    """Nothing generating outside a request: no live reply, nothing in or waiting for the engine."""
    stats = ctx.chat.engine.stats()
    return (ctx.conversations is None or len(ctx.conversations.hub) == 0) and stats.active == 0 and stats.queued == 0


def build_context(
    settings: Settings,
    engine: Engine,
    metrics: Metrics | None,
    *,
    store: ConversationStore | None,
    setup_token: str | None,
    embedder: Embedder | None = None,
) -> AppContext:
    """The running pieces around `engine` (and the history database, when there is one)."""
    metrics = metrics or Metrics()
    metrics.attach(engine.info.name, engine.stats)
    accounts = AccountStore.open(store.db) if store is not None else None
    recorder = SafetyRecorder(metrics, Policy.from_settings(settings), accounts)
    chat = ChatService(engine, safety=Safety.from_settings(settings, observer=recorder))
    conversations = (
        ConversationService(store, chat, ReplyHub(), auto_titles=settings.auto_titles) if store is not None else None
    )
    defaults = default_quota(settings)
    cutoffs = Cutoffs()
    service = (
        AccountService(
            accounts,
            defaults,
            RunningGenerations(cutoffs, conversations),
            throttle=LoginThrottle(),
            setup_token=SetupToken(setup_token),
            conversations=store,
            forget=engine.forget,
        )
        if accounts is not None and store is not None
        else None
    )
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return AppContext(
        settings=settings,
        chat=chat,
        metrics=metrics,
        meter=Meter(accounts, defaults),
        cutoffs=cutoffs,
        started=int(time.time()),
        api_key_hash=hash_key(key) if key else None,
        store=store,
        accounts=accounts,
        account_service=service,
        conversations=conversations,
        embedder=embedder,
    )
