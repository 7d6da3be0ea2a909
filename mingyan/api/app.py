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
from mingyan.accounts.shared_quotas import SharedQuotaGate, quota_gate
from mingyan.accounts.streams import RunningGenerations
from mingyan.accounts.throttle import LoginThrottle
from mingyan.api import (
    account_routes,
    admin_routes,
    bank_routes,
    conversation_routes,
    data_rights_routes,
    document_routes,
    embedding_routes,
    history_routes,
    live_routes,
    moderation_routes,
    openai_routes,
    report_routes,
    safety_routes,
    service_routes,
    tool_server_routes,
    web,
)
from mingyan.api.auth import hash_key
from mingyan.api.content_screens import document_screen
from mingyan.api.context import AppContext
from mingyan.api.drain import Drain, DrainGate
from mingyan.api.errors import install_error_handlers
from mingyan.api.memory_trim import start_memory_trim
from mingyan.api.metrics import Metrics
from mingyan.api.middleware import BodySizeLimit, NoSniff, RefuseNul
from mingyan.api.replica_metrics import attach_replica_metrics
from mingyan.api.retention import start_retention
from mingyan.api.safety_record import SafetyRecorder
from mingyan.api.shared_poll import start_shared_poll
from mingyan.api.tool_kit import tool_kit
from mingyan.chat.attachments import attachments
from mingyan.chat.conversations import ConversationService
from mingyan.chat.live import ReplyHub
from mingyan.chat.service import ChatService
from mingyan.chat.tool_loop import ToolKit
from mingyan.config import Settings
from mingyan.documents.service import DocumentService, document_service
from mingyan.engine.base import Embedder, Engine
from mingyan.safety.gate import Safety
from mingyan.safety.policy import Policy
from mingyan.serving.router import ModelRouter
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore

MULTIPART_SLACK = 64 * 1024  # a file upload's body: the file and its multipart headers


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
        shared = start_shared_poll(ctx)  # other processes' bank edits and stop requests
        trim = start_memory_trim(settings.memory_trim_s)  # freed memory back to the OS (RSS stays flat)
        yield
        for task in (retention, shared, trim):
            if task is not None:
                task.cancel()
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
        _include_stored_routes(app, ctx)
        web.install(app)  # the web chat at /
    if settings.api_docs:
        web.install_api_docs(app)  # Swagger UI, vendored (the schema is at /openapi.json either way)

    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        paths={"/api/import": settings.max_import_bytes, "/api/files": (settings.max_file_mb << 20) + MULTIPART_SLACK},
    )
    app.add_middleware(RefuseNul)
    app.add_middleware(NoSniff)
    app.add_middleware(DrainGate, drain=ctx.drain)  # outermost: a draining server refuses before anything
    return app


def _include_stored_routes(app: FastAPI, ctx: AppContext) -> None:
    """The routes that need the database: conversations, files, accounts, tools, safety."""
    for routes in (
        conversation_routes.router,
        history_routes.router,
        document_routes.router,
        account_routes.public,
        account_routes.router,
        admin_routes.router,
        tool_server_routes.admin,
        tool_server_routes.router,
        safety_routes.router,
        report_routes.router,
        bank_routes.router,
        data_rights_routes.router,
        live_routes.router,
    ):
        app.include_router(routes)
    bank_routes.load_edited_banks(ctx)  # the administrators' keyword banks replace the shipped ones


async def _stop_work(ctx: AppContext, engine: Engine | None, embedder: Embedder | None) -> None:
    """End what still runs: live replies saved `interrupted`, prompt preparation stopped; with the
    server's own `engine`, streams end with an error and the KV states are saved as the engine
    closes (and its embedder closes)."""
    if ctx.conversations is not None:
        await ctx.conversations.close()
    ctx.chat.workers.close()
    if isinstance(ctx.meter.gate, SharedQuotaGate):
        await asyncio.to_thread(ctx.meter.gate.close)
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
    router = engine if isinstance(engine, ModelRouter) else None
    if router is not None:
        metrics.attach_models(router.model_stats)
    else:
        metrics.attach(engine.info.name, engine.stats)
    attach_replica_metrics(metrics.registry, engine)
    accounts = AccountStore.open(store.db) if store is not None else None
    recorder = SafetyRecorder(metrics, Policy.from_settings(settings), accounts)
    safety = Safety.from_settings(settings, observer=recorder, embedder=embedder)
    chat = ChatService(engine, safety=safety, system_prompt=settings.system_prompt)
    conversations, tools, documents = _stored_chat(settings, store, chat, router, embedder, accounts)
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
        meter=Meter(accounts, defaults, quota_gate(store.db if store is not None else None)),
        cutoffs=cutoffs,
        started=int(time.time()),
        api_key_hash=hash_key(key) if key else None,
        store=store,
        accounts=accounts,
        account_service=service,
        conversations=conversations,
        embedder=embedder,
        tools=tools,
        documents=documents,
        models=router,
    )


def _stored_chat(
    settings: Settings,
    store: ConversationStore | None,
    chat: ChatService,
    router: ModelRouter | None,
    embedder: Embedder | None,
    accounts: AccountStore | None = None,
) -> tuple[ConversationService | None, ToolKit | None, DocumentService | None]:
    """With a database: the conversation service, with its tool servers and documents."""
    if store is None:
        return None, None, None
    tools = tool_kit(settings, store.db, accounts)
    documents = document_service(store.db, settings, embedder, screen=document_screen(chat))
    conversations = ConversationService(
        store,
        chat,
        ReplyHub(),
        auto_titles=settings.auto_titles,
        tools=tools,
        attachments=attachments(store.db, documents),
        chats=partial(_chat_for_model, router, chat),
    )
    return conversations, tools, documents


async def _chat_for_model(router: ModelRouter | None, chat: ChatService, model: str) -> ChatService:
    """A stored conversation's model: its own chat service when it is served here, else the first model's."""
    if router is None or not model or model == chat.model_name or not router.has(model):
        return chat
    await asyncio.to_thread(router.load, model)
    return chat.sibling(router.handle(model))
