"""Builds the running pieces from Settings: the model registry and the engine."""

from __future__ import annotations

from mingyan.config import Settings
from mingyan.engine.llamacpp import EngineConfig, LlamaCppEngine, Observer
from mingyan.models.registry import ModelRegistry


def open_registry(settings: Settings, *, progress: bool = True) -> ModelRegistry:
    return ModelRegistry(
        settings.data_dir, settings.cache_dir, hf_endpoint=settings.hf_endpoint, progress=progress
    )


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        n_ctx=settings.n_ctx,
        n_slots=settings.n_slots,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        prefill_chunk=settings.prefill_chunk,
        max_queue=settings.max_queue,
        cache_ram_bytes=settings.cache_ram_mb << 20,
        cache_disk_bytes=settings.cache_disk_mb << 20,
        cache_dir=settings.kv_dir or settings.cache_dir / "kv",
    )


def open_engine(
    settings: Settings, *, progress: bool = True, observer: Observer | None = None
) -> LlamaCppEngine:
    """Resolve (assemble and verify, if needed) the configured model and load it."""
    entry = open_registry(settings, progress=progress).resolve(settings.model)
    return LlamaCppEngine(
        entry.path, name=entry.name, sha256=entry.sha256, config=engine_config(settings),
        observer=observer,
    )
