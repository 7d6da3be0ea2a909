"""Fixtures for the tiny per-architecture models (see tests/tiny_models.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mingyan.bootstrap import open_registry
from mingyan.config import Settings
from mingyan.formats.families import family_by_name
from tests.conftest import QWEN
from tests.tiny_models import FAMILIES, Vocab, make_tiny_model, read_vocab


@pytest.fixture(scope="session")
def qwen_vocab() -> Vocab:
    return read_vocab(open_registry(Settings(), progress=False).resolve(QWEN).path)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, qwen_vocab):
    """family name -> path of its tiny model, generated once per session."""
    folder = tmp_path_factory.mktemp("tiny-models")
    made: dict[str, Path] = {}

    def path_of(name: str) -> Path:
        if name not in made:
            template = family_by_name(name).template  # the canonical one mingyan ships
            made[name] = make_tiny_model(folder / f"{name}.gguf", FAMILIES[name], qwen_vocab, chat_template=template)
        return made[name]

    return path_of
