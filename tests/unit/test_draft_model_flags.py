"""Which draft model the settings ask for (--draft-model NAME / auto / none, --no-draft-model)."""

from __future__ import annotations

from pathlib import Path

from mingyan.bootstrap import AUTO_DRAFT_MODEL, draft_source, open_registry
from mingyan.cli.flags import settings_from_args
from mingyan.cli.main import build_parser
from mingyan.config import Settings


def chosen(tmp_path: Path, *flags: str):
    settings = settings_from_args(build_parser().parse_args(["serve", *flags]))
    return draft_source(settings, open_registry(Settings(data_dir=tmp_path), progress=False))


def test_auto_offers_the_shipped_qwen_but_does_not_insist(tmp_path):
    source = chosen(tmp_path)
    assert source is not None and source.name == AUTO_DRAFT_MODEL and not source.required


def test_a_named_draft_model_is_required(tmp_path):
    source = chosen(tmp_path, "--draft-model", "SmolLM2-135M-Instruct")
    assert source is not None and source.name == "smollm2-135m-instruct" and source.required


def test_no_draft_model_and_none_turn_it_off(tmp_path):
    assert chosen(tmp_path, "--no-draft-model") is None
    assert chosen(tmp_path, "--draft-model", "none") is None


def test_auto_follows_no_speculative_but_a_named_one_does_not(tmp_path):
    assert chosen(tmp_path, "--no-speculative") is None
    assert chosen(tmp_path, "--no-speculative", "--draft-model", "smollm2-135m-instruct") is not None
