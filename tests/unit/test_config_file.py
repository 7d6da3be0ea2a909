"""`mingyan serve --config FILE`: the TOML file's keys are the flags' names, `[[models]]` lists the
models, flags and MINGYAN_* variables override the file, and a bad key or value is one clear line
naming the file and the key (exit 1, no traceback), through the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mingyan.cli.flags import settings_from_args
from mingyan.cli.main import build_parser
from mingyan.config import Settings
from tests.conftest import mingyan_env

CONFIG = """
port = 8123
n-ctx = 1024
drain_timeout = 5.5
speculative = false
api-key = "from-the-file"
data-dir = "~/mingyan-data"
moderation-hate = "log"

[[models]]
name = "smollm2-135m-instruct"

[[models]]
name = "qwen2.5-coder-0.5b-instruct"

[[models]]
name = "big"
upstream = "http://gpu-box:8000/v1"
upstream-model = "Qwen/Qwen2.5-7B-Instruct"

[[models]]
name = "other"
upstream = "http://10.0.0.2:8080/v1"
"""


def settings(tmp_path: Path, text: str, *flags: str) -> Settings:
    path = tmp_path / "mingyan.toml"
    path.write_text(text, encoding="utf-8")
    return settings_from_args(build_parser().parse_args(["serve", "--config", str(path), *flags]))


def serve_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """`mingyan serve --config FILE` as a user runs it (bad files stop before any model loads)."""
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "mingyan", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=mingyan_env(tmp_path),
    )


def test_the_file_sets_the_flags_and_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINGYAN_N_CTX", raising=False)
    got = settings(tmp_path, CONFIG)
    assert (got.port, got.n_ctx, got.drain_timeout, got.speculative) == (8123, 1024, 5.5, False)
    assert got.api_key is not None and got.api_key.get_secret_value() == "from-the-file"
    assert got.data_dir == Path("~/mingyan-data").expanduser() and got.moderation_hate == "log"
    assert (got.model, got.models) == ("smollm2-135m-instruct", ["qwen2.5-coder-0.5b-instruct"])
    assert got.upstream == ["big=http://gpu-box:8000/v1#Qwen/Qwen2.5-7B-Instruct", "other=http://10.0.0.2:8080/v1"]


def test_flags_then_variables_override_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINGYAN_N_CTX", "3072")
    monkeypatch.setenv("MINGYAN_PORT", "9999")
    got = settings(tmp_path, CONFIG, "--port", "9001", "--model", "a", "--model", "b", "--speculative")
    assert (got.port, got.n_ctx, got.speculative) == (9001, 3072, True)  # flag > variable > file
    assert (got.model, got.models) == ("a", ["b"])  # the flags' models replace the file's
    assert got.upstream[0].startswith("big=")  # ... not its upstreams
    only = settings(tmp_path, CONFIG, "--upstream", "x=http://h:1/v1")
    assert only.upstream == ["x=http://h:1/v1"] and only.model == "smollm2-135m-instruct"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n-ctxx = 2048\n", "unknown key 'n-ctxx'"),
        ("[[models]]\nname = 'a'\nkeep-alive = 3\n", "unknown key 'keep_alive' in model 1"),
        ("n-ctx = 'lots'\n", "n-ctx: Input should be a valid integer"),
        ("n-ctx = 10\n", "n-ctx: Input should be greater than or equal to 64"),
        ("moderation-hate = 'maybe'\n", "moderation-hate: Input should be 'off', 'log' or 'block'"),
        ("port = 1\nport = 2\n", "is not valid TOML"),
        ("model = 'a'\n[[models]]\nname = 'b'\n", "'model' is given beside [[models]]"),
        ("[[models]]\nupstream = 'http://h/v1'\n", "model 1 needs a name"),
        ("[[models]]\nname = 'x'\nupstream = 'ftp://h'\n", "an upstream is NAME=URL"),
    ],
)
def test_a_bad_file_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    done = serve_config(tmp_path, text)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mingyan", "serve", "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=mingyan_env(tmp_path),
    )
    assert done.returncode == 1 and "cannot read the config file" in done.stderr and "none.toml" in done.stderr
