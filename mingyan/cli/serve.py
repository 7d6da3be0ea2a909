"""`mingyan serve`: refuse a public bind without authentication, load the model, build the app, run uvicorn."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

from mingyan.cli.flags import add_config_flag, add_settings_flags
from mingyan.config import Settings
from mingyan.errors import MingyanError

GRACEFUL_SHUTDOWN_S = 5
SERVE_FIELDS = (
    "host",
    "port",
    "model",
    "models_memory_mb",
    "keep_alive_s",
    "upstream",
    "upstream_api_key",
    "ray",
    "ray_replicas",
    "ray_model_replicas",
    "ray_replica_resources",
    "embedding_model",
    "database_url",
    "n_ctx",
    "n_slots",
    "n_threads",
    "n_batch",
    "prefill_chunk",
    "speculative",
    "max_draft",
    "draft_model",
    "max_queue",
    "cache_ram_mb",
    "cache_disk_mb",
    "kv_dir",
    "api_key",
    "auto_titles",
    "api_replicas",
    "session_hours",
    "quota_requests_per_minute",
    "quota_tokens_per_day",
    "quota_concurrent_streams",
    "max_body_bytes",
    "max_import_bytes",
    "max_file_mb",
    "max_file_pages",
    "file_storage_mb",
    "data_dir",
    "cache_dir",
    "hf_endpoint",
    "forwarded_allow_ips",
    "api_docs",
    "header_timeout_s",
    "drain_timeout",
    "stream_buffer_kb",
    "memory_trim_s",
    "retention_days",
    "ai_provider",
    "ai_label_on_copy",
    "tool_call_timeout_s",
    "tool_list_timeout_s",
    "tool_result_chars",
    "tool_max_steps",
    "tool_approval_timeout_s",
    *(f"moderation_{c}" for c in ("violence", "weapons", "self_harm", "fraud", "minors", "hate")),
    "moderation_judge",
    "moderation_classifier",
    "system_prompt",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the OpenAI-compatible HTTP server", description="Run the OpenAI-compatible HTTP server."
    )
    add_config_flag(parser, SERVE_FIELDS)
    add_settings_flags(parser, SERVE_FIELDS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    serve(settings)
    return 0


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


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn runs the app. Forwarded headers (the client's address and scheme as a proxy saw
    them) are believed only from the proxies the operator names: uvicorn's own default trusts any
    local process, which could then forge the address sign-ins are throttled and audited by."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from mingyan.api.header_timeout import with_header_timeout

    trusted = settings.forwarded_allow_ips
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "proxy_headers": trusted is not None,
        "forwarded_allow_ips": trusted if trusted is not None else [],
        "http": with_header_timeout(AutoHTTPProtocol, settings.header_timeout_s),
    }


def serve(settings: Settings) -> None:
    import uvicorn

    from mingyan.api.app import create_app
    from mingyan.api.metrics import Metrics
    from mingyan.bootstrap import open_embedder, open_store
    from mingyan.cli.draining import DrainingServer
    from mingyan.store.accounts.account_store import AccountStore

    store = open_store(settings)
    try:
        accounts = AccountStore.open(store.db).users.count_users()
        check_exposure(settings, accounts)
    except BaseException:
        store.engine.dispose()
        raise
    metrics = Metrics()
    engine = _open_engines(settings, metrics)
    embedder = None
    try:
        embedder = open_embedder(settings)
        # The app closes the engine on shutdown (SIGINT is re-raised after uvicorn's graceful
        # shutdown, so code after the server's run() may never run).
        token = setup_token(settings, accounts)
        app = create_app(
            settings, engine, metrics, close_engine=True, store=store, setup_token=token, embedder=embedder
        )
        print(
            f"mingyan: serving {_serving(engine)}"
            + (f" and embeddings with {embedder.info.name}" if embedder else "")
            + f" at http://{settings.host}:{settings.port}/ (web chat; API at /v1 and /api)",
            file=sys.stderr,
            flush=True,
        )
        server = DrainingServer(uvicorn.Config(app, **uvicorn_options(settings)), app.state.context.drain)
        server.run()
        if not server.started:  # uvicorn logged why (the port is taken, say)
            raise MingyanError(f"could not listen on {settings.host}:{settings.port}")
    finally:
        engine.close()
        if embedder is not None:
            embedder.close()
        store.engine.dispose()


def _open_engines(settings: Settings, metrics: Any) -> Any:
    """The model's engine; with more than one model, a ModelRouter over them (mingyan.serving)."""
    from mingyan.bootstrap import open_engine, open_models, open_ray_replicas

    if settings.ray:
        return open_ray_replicas(settings, observer=metrics.observe)
    if settings.models or settings.upstream:
        return open_models(settings, observer=metrics.observe)
    return open_engine(settings, observer=metrics.observe)


def _serving(engine: Any) -> str:
    if hasattr(engine, "replicas"):  # replicas on Ray
        return f"{engine.info.name} ({len(engine.replicas())} replicas on Ray)"
    if hasattr(engine, "config"):  # one llama.cpp engine
        return f"{engine.info.name} ({engine.config.n_slots} slots of {engine.info.n_ctx} tokens)"
    rest = [name for name in engine.names if name != engine.primary]
    return f"{engine.primary} (loaded) and {', '.join(rest)} (loaded on first use)"
