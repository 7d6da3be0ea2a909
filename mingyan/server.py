"""`mingyan serve`: load the model, build the app, run uvicorn."""

from __future__ import annotations

import secrets
import sys

import uvicorn

from mingyan.api.app import create_app
from mingyan.api.metrics import Metrics
from mingyan.config import Settings
from mingyan.errors import MingyanError
from mingyan.runtime import open_embedder, open_engine, open_store
from mingyan.store.accounts import Accounts

GRACEFUL_SHUTDOWN_S = 5


def check_exposure(settings: Settings, accounts: int) -> None:
    """Listening beyond loopback requires authentication: accounts, or the server's API key."""
    if not settings.is_loopback and settings.api_key is None and accounts == 0:
        raise MingyanError(
            f"refusing to listen on {settings.host} without authentication: create an account "
            "(`mingyan users create NAME --admin`) or set --api-key (MINGYAN_API_KEY), or listen on 127.0.0.1"
        )


def setup_token(settings: Settings, accounts: int) -> str | None:
    """With no accounts yet, a one-time token for creating the first administrator in the browser."""
    if accounts > 0:
        return None
    token = secrets.token_urlsafe(24)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(
        f"mingyan: no accounts yet — local use needs none. To create the first administrator, open "
        f"http://{host}:{settings.port}/setup?token={token} or run `mingyan users create NAME --admin`.",
        file=sys.stderr,
        flush=True,
    )
    return token


def serve(settings: Settings) -> None:
    store = open_store(settings)
    try:
        accounts = Accounts(store).count_users()
        check_exposure(settings, accounts)
    except BaseException:
        store.engine.dispose()
        raise
    metrics = Metrics()
    engine = open_engine(settings, observer=metrics.observe)
    embedder = None
    try:
        embedder = open_embedder(settings)
        # The app closes the engine on shutdown: uvicorn re-raises SIGTERM after its graceful
        # shutdown, so code after uvicorn.run() may never run.
        token = setup_token(settings, accounts)
        app = create_app(
            settings, engine, metrics, close_engine=True, store=store, setup_token=token, embedder=embedder
        )
        print(
            f"mingyan: serving {engine.info.name} ({engine.config.n_slots} slots of "
            f"{engine.info.n_ctx} tokens)"
            + (f" and embeddings with {embedder.info.name}" if embedder else "")
            + " "
            f"at http://{settings.host}:{settings.port}/ (web chat; API at /v1 and /api)",
            file=sys.stderr,
            flush=True,
        )
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    finally:
        engine.close()
        if embedder is not None:
            embedder.close()
        store.engine.dispose()
