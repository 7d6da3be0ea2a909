"""Builds the running pieces from Settings: the model registry and the engine."""

from __future__ import annotations

from mingyan.config import Settings
from mingyan.engine.llamacpp import LlamaCppEngine
from mingyan.models.registry import ModelRegistry


def open_registry(settings: Settings, *, progress: bool = True) -> ModelRegistry:
    return ModelRegistry(
        settings.data_dir, settings.cache_dir, hf_endpoint=settings.hf_endpoint, progress=progress
    )


def open_engine(settings: Settings, *, progress: bool = True) -> LlamaCppEngine:
    """Resolve (assemble and verify, if needed) the configured model and load it."""
    entry = open_registry(settings, progress=progress).resolve(settings.model)
    return LlamaCppEngine(
        entry.path,
        name=entry.name,
        sha256=entry.sha256,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
    )
