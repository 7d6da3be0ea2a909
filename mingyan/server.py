"""`mingyan serve`: load the model, build the app, run uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from mingyan.api.app import create_app
from mingyan.api.metrics import Metrics
from mingyan.config import Settings
from mingyan.errors import MingyanError
from mingyan.runtime import open_engine, open_store

GRACEFUL_SHUTDOWN_S = 5


def check_exposure(settings: Settings) -> None:
    """Listening beyond loopback requires authentication."""
    if not settings.is_loopback and settings.api_key is None:
        raise MingyanError(
            f"refusing to listen on {settings.host} without authentication: "
            "set --api-key (or MINGYAN_API_KEY), or listen on 127.0.0.1"
        )


def serve(settings: Settings) -> None:
    check_exposure(settings)
    store = open_store(settings)
    metrics = Metrics()
    engine = open_engine(settings, observer=metrics.observe)
    try:
        # The app closes the engine on shutdown: uvicorn re-raises SIGTERM after its graceful
        # shutdown, so code after uvicorn.run() may never run.
        app = create_app(settings, engine, metrics, close_engine=True, store=store)
        print(
            f"mingyan: serving {engine.info.name} ({engine.config.n_slots} slots of "
            f"{engine.info.n_ctx} tokens) "
            f"at http://{settings.host}:{settings.port}/v1",
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
        store.engine.dispose()
