"""Chunk and query texts for the embedding model, and their vectors through the Embedder.

E5 models were trained with "query: " and "passage: " prefixes; other models get the text as is.
An input is cut to `MAX_EMBED_CHARS` characters, which keeps a chunk within the model's input.
"""

from __future__ import annotations

from collections.abc import Sequence

from mingyan.engine.base import Embedder

MAX_EMBED_CHARS = 1200
BATCH = 32


def _prefixed(embedder: Embedder, prefix: str, text: str) -> str:
    text = text[:MAX_EMBED_CHARS]
    return f"{prefix}{text}" if "e5" in embedder.info.name.lower() else text


async def embed_passages(embedder: Embedder, texts: Sequence[str], user: str) -> list[list[float]]:
    vectors: list[list[float]] = []
    for first in range(0, len(texts), BATCH):
        batch = [_prefixed(embedder, "passage: ", t) for t in texts[first : first + BATCH]]
        vectors.extend((await embedder.embed(batch, user=user)).vectors)
    return vectors


async def embed_query(embedder: Embedder, query: str, user: str) -> list[float]:
    return (await embedder.embed([_prefixed(embedder, "query: ", query)], user=user)).vectors[0]
