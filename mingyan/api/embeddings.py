"""The embeddings service behind POST /v1/embeddings: model and `dimensions` checks, quota
admission and usage recording, and the OpenAI encodings (float lists or base64)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import numpy as np
from fastapi import Request

from mingyan.api.auth import Principal
from mingyan.api.context import context
from mingyan.api.schemas.embeddings import EmbeddingData
from mingyan.api.streaming import unless_disconnected
from mingyan.engine.base import Embedder, EmbeddingInput, Embeddings, Usage
from mingyan.errors import InvalidRequestError

ROUTE = "embeddings"


def served_embedder(request: Request, model: str | None) -> Embedder:
    """The embedder `model` names (None: the one served); 404 model_not_found otherwise."""
    embedder: Embedder | None = context(request).embedder
    if embedder is None:
        raise InvalidRequestError(
            "This server serves no embedding model (start it with --embedding-model NAME).",
            param="model",
            code="model_not_found",
        )
    if model is not None and model != embedder.info.name:
        raise InvalidRequestError(
            f"The model '{model}' does not serve embeddings here; this server's embedding model "
            f"is '{embedder.info.name}'.",
            param="model",
            code="model_not_found",
        )
    return embedder


def check_dimensions(embedder: Embedder, dimensions: int | None) -> int:
    """The vector length to return: the model's own, or a shorter one for Matryoshka models."""
    info = embedder.info
    if dimensions is None or dimensions == info.dimensions:
        return info.dimensions
    if not info.matryoshka:
        raise InvalidRequestError(
            f"{info.name} returns {info.dimensions}-dimensional vectors and cannot shorten them "
            f"(it is not a Matryoshka model); omit 'dimensions' or set it to {info.dimensions}.",
            param="dimensions",
        )
    if dimensions > info.dimensions:
        raise InvalidRequestError(
            f"'dimensions' must be at most {info.dimensions} for {info.name}.", param="dimensions"
        )
    return dimensions


async def metered_embed(
    request: Request,
    principal: Principal,
    embedder: Embedder,
    inputs: Sequence[EmbeddingInput],
    user: str,
) -> Embeddings:
    """Admit the request (quotas), embed, and record its usage. A client that disconnects stops
    the work before the embedder's next batch."""
    state = context(request)
    admission = await asyncio.to_thread(state.meter.admit, principal)
    try:
        result = await unless_disconnected(request, lambda: embedder.embed(inputs, user=user))
    finally:
        admission.release()
    usage = Usage(prompt_tokens=result.prompt_tokens, completion_tokens=0)
    await asyncio.to_thread(state.meter.record, principal, ROUTE, embedder.info.name, usage)
    return result


def shorten(vector: list[float], dimensions: int) -> np.ndarray:
    """The first `dimensions` components, scaled back to unit length (OpenAI's `dimensions`)."""
    head = np.asarray(vector[:dimensions], dtype=np.float32)
    norm = float(np.linalg.norm(head))
    return head / norm if norm > 0 else head


def encode(vectors: list[list[float]], dimensions: int, encoding_format: str) -> list[EmbeddingData]:
    """OpenAI's `data`: float lists, or base64 of the little-endian float32 bytes."""
    data = []
    for index, vector in enumerate(vectors):
        values = shorten(vector, dimensions) if dimensions < len(vector) else np.asarray(vector, np.float32)
        if encoding_format == "base64":
            embedding: list[float] | str = base64.b64encode(values.astype("<f4").tobytes()).decode("ascii")
        else:
            embedding = values.tolist()
        data.append(EmbeddingData(index=index, embedding=embedding))
    return data
