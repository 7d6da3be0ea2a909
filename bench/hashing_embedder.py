"""A deterministic, model-free embedder for benchmarks at scale: feature hashing of a text's words
(Latin words, and Chinese character pairs) into a signed unit vector of `dimensions` floats.

Embedding 100,000 chunks with the shipped model would take hours on a small CPU; these vectors cost
microseconds, have the shipped model's dimensions (384), and are similar when texts share words,
so vector search over them does real work (the database reads and ranks every vector of the owner).
They measure the search machinery, not retrieval quality.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from mingyan.engine.base import EmbedderInfo, EmbeddingInput, Embeddings

_WORDS = re.compile(r"[A-Za-z0-9]+|[\u3400-\u9fff]+")


class HashingEmbedder:
    def __init__(self, dimensions: int = 384) -> None:
        self._info = EmbedderInfo("hashing-bench", "", "", dimensions, 512, 1, "mean")

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    def vector(self, text: str) -> list[float]:
        v = np.zeros(self._info.dimensions, dtype=np.float32)
        for feature in _features(text):
            h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
            v[h % len(v)] += 1.0 if (h >> 32) & 1 else -1.0
        norm = float(np.linalg.norm(v))
        return (v / norm if norm else v).tolist()

    async def embed(self, inputs: Sequence[EmbeddingInput], user: str = "") -> Embeddings:
        texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in inputs]
        return Embeddings([self.vector(t) for t in texts], sum(len(t) for t in texts))

    def close(self) -> None:
        pass


def _features(text: str) -> list[str]:
    found = []
    for word in _WORDS.findall(text.lower()):
        if word.isascii():
            found.append(word)
        else:
            found.extend(word[i : i + 2] for i in range(max(1, len(word) - 1)))
    return found
