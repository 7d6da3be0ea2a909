"""Scores and fusion: BM25 over term postings, cosine over unit vectors, reciprocal rank fusion."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

K1, B = 1.2, 0.75
RRF_K = 60


@dataclass(frozen=True)
class Posting:
    chunk_id: int
    term: str
    count: int  # occurrences of the term in the chunk
    length: int  # terms in the chunk


def idf(document_frequency: int, n_chunks: int) -> float:
    """BM25's inverse document frequency of a term held by `document_frequency` of `n_chunks` chunks."""
    return math.log(1 + (n_chunks - document_frequency + 0.5) / (document_frequency + 0.5))


def bm25(
    postings: Iterable[Posting], document_frequency: dict[str, int], n_chunks: int, mean_length: float
) -> dict[int, float]:
    """BM25 (Okapi, k1=1.2, b=0.75) of each chunk that holds any query term, in Python: the
    reference for the store's in-database ranking (DocumentStore.bm25_top)."""
    scores: dict[int, float] = {}
    mean_length = max(mean_length, 1.0)
    for p in postings:
        weight = idf(document_frequency.get(p.term, 0), n_chunks)
        tf = p.count * (K1 + 1) / (p.count + K1 * (1 - B + B * p.length / mean_length))
        scores[p.chunk_id] = scores.get(p.chunk_id, 0.0) + weight * tf
    return scores


def top(scores: dict[int, float], limit: int) -> list[int]:
    return [key for key, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]]


def to_blob(vector: Sequence[float]) -> bytes:
    """A vector as little-endian float32 bytes (portable across databases)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blobs(blobs: Sequence[bytes], dimensions: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimensions)


def nearest(ids: Sequence[int], blobs: Sequence[bytes], query: Sequence[float], limit: int) -> list[int]:
    """The `limit` ids whose unit vectors lie closest (cosine) to the unit vector `query`."""
    if not ids:
        return []
    q = np.asarray(query, dtype=np.float32)
    matrix = from_blobs(blobs, len(q))
    similarity = matrix @ q
    order = np.argsort(-similarity, kind="stable")[:limit]
    return [ids[i] for i in order]


def fuse(rankings: Sequence[Sequence[int]], limit: int, k: int = RRF_K) -> list[int]:
    """Reciprocal rank fusion: each id scores the sum of 1 / (k + rank) over the rankings holding it."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return top(scores, limit)
