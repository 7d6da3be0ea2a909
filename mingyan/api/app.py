"""create_app(): builds the FastAPI application around an engine. No globals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response

from mingyan import __version__
from mingyan.api import account_routes, admin_routes, conversation_routes, history_routes, openai_routes, web
from mingyan.api.account_routes import LoginThrottle
from mingyan.api.auth import hash_key, require_admin, require_principal
from mingyan.api.errors import install_error_handlers
from mingyan.api.metering import Cutoffs, Meter, default_quota
from mingyan.api.metrics import Metrics
from mingyan.api.middleware import BodySizeLimit, RefuseNul
from mingyan.api.schemas import Health
from mingyan.chat.conversations import ConversationService
from mingyan.chat.live import ReplyHub
from mingyan.chat.service import ChatService
from mingyan.config import Settings
from mingyan.engine.base import Engine
from mingyan.store.accounts import Accounts
from mingyan.store.repository import Store


def create_app(
    settings: Settings, engine: Engine, metrics: Metrics | None = None, *,
    close_engine: bool = False, store: Store | None = None, setup_token: str | None = None,
) -> FastAPI:
    """The app around `engine`. Pass the `Metrics` whose `observe` the engine reports to.

    With `close_engine`, the app closes the engine when it shuts down (the server's own engine:
    its KV states get saved before the process exits). `setup_token` enables the first-run setup
    (creating the first administrator) while the server has no accounts.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if app.state.conversations is not None:
            await app.state.conversations.close()  # live replies saved as `interrupted`
        app.state.chat.workers.close()
        if close_engine:
            await asyncio.to_thread(engine.close)

    app = FastAPI(title="mingyan", version=__version__, docs_url="/docs", redoc_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.chat = ChatService(engine)
    app.state.conversations = (
        ConversationService(store, app.state.chat, ReplyHub(), auto_titles=settings.auto_titles)
        if store is not None else None
    )
    app.state.metrics = metrics or Metrics()
    app.state.metrics.attach(engine.info.name, engine.stats)
    app.state.started = int(time.time())
    key = settings.api_key.get_secret_value() if settings.api_key else None
    app.state.api_key_hash = hash_key(key) if key else None
    app.state.accounts = Accounts(store) if store is not None else None
    app.state.meter = Meter(app.state.accounts, default_quota(settings))
    app.state.cutoffs = Cutoffs()
    app.state.login_throttle = LoginThrottle()
    app.state.setup_hash = hash_key(setup_token) if setup_token else None

    install_error_handlers(app)
    app.include_router(openai_routes.router)
    if store is not None:
        app.include_router(conversation_routes.router)
        app.include_router(history_routes.router)
        app.include_router(account_routes.public)
        app.include_router(account_routes.router)
        app.include_router(admin_routes.router)
        web.install(app)  # the web chat at /

    @app.get("/health")
    async def health(request: Request) -> Health:
        service = request.app.state.chat
        stats = service.engine.stats()
        return Health(
            model=service.model_name,
            active_requests=stats.active,
            queued_requests=stats.queued,
            generated_tokens_total=stats.generated_tokens_total,
        )

    @app.get("/metrics", dependencies=[Depends(require_principal), Depends(require_admin)], include_in_schema=False)
    async def metrics_route(request: Request) -> Response:
        body = request.app.state.metrics.render()
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, paths={"/api/import": settings.max_import_bytes}
    )
    app.add_middleware(RefuseNul)
    return app
