"""Builds the running pieces from Settings: the model registry and the engine."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial

from mingyan.config import Settings
from mingyan.engine.base import Embedder
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.draft_model import DraftSource
from mingyan.engine.llamacpp.engine import LlamaCppEngine, Observer
from mingyan.errors import MingyanError
from mingyan.models.registry import ModelRegistry

AUTO_DRAFT_MODEL = "qwen2.5-coder-0.5b-instruct"  # drafts for larger Qwen2.5 models (--draft-model auto)


def open_registry(settings: Settings, *, progress: bool = True) -> ModelRegistry:
    return ModelRegistry(settings.data_dir, settings.cache_dir, hf_endpoint=settings.hf_endpoint, progress=progress)


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        n_ctx=settings.n_ctx,
        n_slots=settings.n_slots,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        prefill_chunk=settings.prefill_chunk,
        speculative=settings.speculative,
        max_draft=settings.max_draft,
        max_queue=settings.max_queue,
        cache_ram_bytes=settings.cache_ram_mb << 20,
        cache_disk_bytes=settings.cache_disk_mb << 20,
        cache_dir=settings.kv_dir or settings.cache_dir / "kv",
    )


def open_engine(settings: Settings, *, progress: bool = True, observer: Observer | None = None) -> LlamaCppEngine:
    """Resolve (assemble and verify, if needed) the configured model and load it."""
    registry = open_registry(settings, progress=progress)
    entry = registry.resolve(settings.model)
    return LlamaCppEngine(
        entry.path,
        name=entry.name,
        sha256=entry.sha256,
        config=engine_config(settings),
        observer=observer,
        draft=draft_source(settings, registry),
    )


def draft_source(settings: Settings, registry: ModelRegistry) -> DraftSource | None:
    """The model that drafts for the served ones (--draft-model): one named, the shipped Qwen2.5 0.5B
    when automatic (the engine uses it only for a larger Qwen2.5 model of its vocabulary), or none."""
    name = settings.draft_model.strip().lower()
    if name == "none" or not settings.speculative and name == "auto":
        return None
    if name == "auto":
        if not any(e.name == AUTO_DRAFT_MODEL and e.source == "shipped" and e.available for e in registry.list()):
            return None
        return DraftSource(AUTO_DRAFT_MODEL, lambda: registry.resolve(AUTO_DRAFT_MODEL).path, required=False)
    return DraftSource(name, lambda: registry.resolve(name).path, required=True)


def open_models(settings: Settings, *, progress: bool = True, observer: Observer | None = None):
    """Every chat model of the settings behind one ModelRouter (mingyan.serving): the first loaded
    now, the others checked now (assembled if shipped) and loaded on first use."""
    from mingyan.serving.router import ModelSource

    registry = open_registry(settings, progress=progress)
    config = engine_config(settings)
    sources = []
    draft = draft_source(settings, registry)
    for name in [settings.model, *settings.models]:
        entry = registry.resolve(name)

        def load(entry=entry) -> LlamaCppEngine:
            return LlamaCppEngine(
                entry.path, name=entry.name, sha256=entry.sha256, config=config, observer=observer, draft=draft
            )

        sources.append(ModelSource(entry.name, load, size_bytes=entry.path.stat().st_size))
    sources += upstream_sources(settings)
    return _start_router(settings, sources, lambda scope: _forget_offline(config, scope))


def _start_router(settings: Settings, sources: list, forget_offline):
    """A ModelRouter over `sources`, its first model loaded now."""
    from mingyan.serving.router import ModelRouter

    router = ModelRouter(
        sources,
        budget_bytes=settings.models_memory_mb << 20,
        keep_alive_s=settings.keep_alive_s,
        forget_offline=forget_offline,
        report=_tell,
    )
    try:
        router.start()
    except BaseException:
        router.close()
        raise
    return router


def open_ray_replicas(settings: Settings, *, progress: bool = True, observer: Observer | None = None):
    """Each chat model's engine as --ray-replicas actors on the Ray cluster at --ray
    (mingyan.serving.ray_engine). One model alone: its RayEngine. Several (or an --upstream
    beside): a ModelRouter over them, the first started now, the others on first use; unloading
    a Ray model stops its actors and frees their resources on the cluster."""
    from mingyan.serving.ray_connect import parse_model_replicas, parse_resources
    from mingyan.serving.ray_engine import open_ray_engine
    from mingyan.serving.ray_replica import ReplicaSpec
    from mingyan.serving.router import ModelSource

    assert settings.ray is not None
    registry = open_registry(settings, progress=progress)
    config = engine_config(settings)
    resources = [parse_resources(r) for r in settings.ray_replica_resources]
    entries = [registry.resolve(name) for name in [settings.model, *settings.models]]
    counts = parse_model_replicas(settings.ray_model_replicas, [e.name for e in entries])
    sources = []
    for entry in entries:
        replicas = counts.get(entry.name, settings.ray_replicas)
        spec = ReplicaSpec(
            model=entry.name,
            sha256=entry.sha256,
            data_dir=settings.data_dir,
            cache_dir=settings.cache_dir,
            hf_endpoint=settings.hf_endpoint,
            config=config,
        )
        start = partial(
            open_ray_engine, spec, address=settings.ray, replicas=replicas, resources=resources, observer=observer
        )
        # What the memory budget counts of a Ray model: its file in each replica, on the cluster.
        sources.append(ModelSource(entry.name, start, size_bytes=entry.path.stat().st_size * replicas, where="ray"))
    if len(sources) == 1 and not settings.upstream:
        return sources[0].open()
    sources += upstream_sources(settings)
    most = max([settings.ray_replicas, *counts.values()])
    return _start_router(settings, sources, lambda scope: _forget_replicas_offline(config, most, scope))


def upstream_sources(settings: Settings) -> list:
    """The models other servers run (--upstream NAME=URL): nothing is contacted until a request."""
    from mingyan.serving.router import ModelSource
    from mingyan.serving.upstream import UpstreamEngine, parse_upstream

    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
    sources = []
    for spec in settings.upstream:
        upstream = parse_upstream(spec, key)
        sources.append(ModelSource(upstream.name, partial(UpstreamEngine, upstream), where=upstream.shown_url))
    return sources


def _tell(line: str) -> None:
    print(f"mingyan: {line}", file=sys.stderr, flush=True)


def _forget_offline(config: EngineConfig, scope: str) -> None:
    if config.cache_dir is not None:
        from mingyan.engine.llamacpp.prefix_cache import forget_on_disk

        forget_on_disk(config.cache_dir, scope)


def _forget_replicas_offline(config: EngineConfig, replicas: int, scope: str) -> None:
    """The saved states of a Ray model's replicas on this machine (the others' stay on theirs)."""
    if config.cache_dir is not None:
        from mingyan.engine.llamacpp.prefix_cache import forget_on_disk

        for i in range(replicas):
            forget_on_disk(config.cache_dir / f"replica-{i}", scope)


def open_embedder(settings: Settings, *, progress: bool = True) -> Embedder | None:
    """The embedding model served beside the chat model, or None when it is set to `none`."""
    name = settings.embedding_model.strip().lower()
    if name in ("", "none"):
        return None
    from mingyan.engine.embedding import LlamaCppEmbedder

    entry = open_registry(settings, progress=progress).resolve(name)
    return LlamaCppEmbedder(
        entry.path,
        name=entry.name,
        sha256=entry.sha256,
        n_threads=settings.n_threads,
        max_queue=settings.max_queue,
    )


def database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from mingyan.store.db import default_url

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return default_url(settings.data_dir)


def migrate_database(settings: Settings) -> str:
    """Apply the schema migrations; returns the URL (password hidden) for messages."""
    return _migrate(database_url(settings))


def _migrate(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mingyan.store.migrate import upgrade

    shown = make_url(url).render_as_string(hide_password=True)
    try:
        upgrade(url)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MingyanError(f"cannot migrate the database {shown}: {reason}") from exc
    return shown


@dataclass(frozen=True)
class DatabaseStatus:
    url: str  # password hidden
    revision: str | None  # the database's schema; None when empty
    head: str  # the newest schema this mingyan knows
    counts: dict[str, int]  # rows of the main tables (empty before the first migration)


STATUS_TABLES = ("users", "conversations", "messages", "api_keys", "audit_events")


def database_status(settings: Settings) -> DatabaseStatus:
    """What `mingyan db status` shows; changes nothing."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from mingyan.store.db import Database
    from mingyan.store.migrate import current_revision, head_revision

    url = database_url(settings)
    db = Database.open(url)
    try:
        revision = current_revision(db.engine)
        present = set(inspect(db.engine).get_table_names())
        with db.engine.connect() as connection:
            counts = {
                t: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one()
                for t in STATUS_TABLES
                if t in present
            }
    finally:
        db.dispose()
    shown = make_url(url).render_as_string(hide_password=True)
    return DatabaseStatus(shown, revision, head_revision(), counts)


def open_store(settings: Settings):
    """Migrate the history database, open it, and mark answers cut off by a crash as interrupted.
    With --api-replicas on PostgreSQL, other server processes may be running replies: only those
    not saved for chat.live.STALE_S are taken as cut off."""
    from datetime import UTC, datetime, timedelta

    from mingyan.chat.live import STALE_S
    from mingyan.store.conversations import ConversationStore
    from mingyan.store.db import Database

    url = database_url(settings)
    _migrate(url)
    store = ConversationStore(Database.open(url))
    shared = settings.api_replicas and store.db.dialect == "postgresql"
    store.mark_interrupted_streams(datetime.now(UTC) - timedelta(seconds=STALE_S) if shared else None)
    return store
