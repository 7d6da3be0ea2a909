"""`dimensions` and `encoding_format` as OpenAI defines them: a Matryoshka model's vectors are
cut to their first N components and renormalized; base64 is little-endian float32."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import numpy as np
import pytest

from mingyan.api.embeddings import check_dimensions, encode
from mingyan.engine.base import EmbedderInfo
from mingyan.errors import InvalidRequestError


def embedder(matryoshka: bool) -> SimpleNamespace:
    return SimpleNamespace(
        info=EmbedderInfo(
            name="m",
            path="-",
            sha256="0" * 64,
            dimensions=8,
            max_input_tokens=16,
            n_vocab=10,
            pooling="mean",
            matryoshka=matryoshka,
        )
    )


def test_dimensions_only_where_the_model_allows() -> None:
    assert check_dimensions(embedder(False), None) == 8
    assert check_dimensions(embedder(False), 8) == 8
    with pytest.raises(InvalidRequestError, match="not a Matryoshka") as caught:
        check_dimensions(embedder(False), 4)
    assert caught.value.param == "dimensions"
    assert check_dimensions(embedder(True), 4) == 4
    with pytest.raises(InvalidRequestError, match="at most 8"):
        check_dimensions(embedder(True), 9)


def test_shortened_vectors_are_the_renormalized_prefix() -> None:
    vector = np.arange(1, 9, dtype=np.float64)
    vector /= np.linalg.norm(vector)
    [item] = encode([vector.tolist()], 3, "float")
    expected = np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0])
    assert np.allclose(item.embedding, expected, atol=1e-6)


def test_base64_is_little_endian_float32() -> None:
    vector = [0.5, -0.25, 0.125, 1e-3]
    [item] = encode([vector], 4, "base64")
    assert base64.b64decode(item.embedding) == np.asarray(vector, dtype="<f4").tobytes()
