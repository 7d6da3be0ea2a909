"""The `mingyan` command as a user runs it: help, one-line errors, terminal chat."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import SMOLLM, mingyan_env


def run(tmp_path, *args, stdin="", timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mingyan", *args], input=stdin, capture_output=True, text=True,
        timeout=timeout, env=mingyan_env(tmp_path),
    )


@pytest.mark.parametrize("command", [[], ["serve"], ["chat"], ["models"], ["models", "pull"]])
def test_every_command_has_help(tmp_path, command):
    result = run(tmp_path, *command, "--help")
    assert result.returncode == 0
    assert "usage: mingyan" in result.stdout


def assert_one_line_error(result, *words):
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_public_bind_without_auth_is_refused(tmp_path):
    assert_one_line_error(run(tmp_path, "serve", "--host", "0.0.0.0"), "0.0.0.0", "api-key")


def test_unknown_model_is_one_line(tmp_path):
    assert_one_line_error(run(tmp_path, "serve", "--model", "no-such-model"), "no-such-model")


def test_invalid_setting_is_one_line(tmp_path):
    assert_one_line_error(run(tmp_path, "serve", "--port", "99999"), "port")


def test_in_process_terminal_chat(tmp_path):
    script = "/system You answer in one short sentence.\nHello!\n/reset\n你好\n/help\n/exit\n"
    result = run(tmp_path, "chat", "--model", SMOLLM, "--n-ctx", "1024", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(system prompt set" in out and "(conversation cleared)" in out and "/reset" in out
    replies = [line for line in out.splitlines() if line.strip() and not line.startswith(("(", "mingyan chat", "commands"))]
    assert len(replies) >= 2, out


def test_terminal_chat_against_server(tmp_path, smollm_server):
    result = run(tmp_path, "chat", "--url", smollm_server.url, stdin="What is the sea?\n")
    assert result.returncode == 0, result.stderr
    assert f"connected to {SMOLLM}" in result.stderr
    assert len(result.stdout.strip().splitlines()) >= 2


def test_terminal_chat_unreachable_server_is_one_line(tmp_path):
    assert_one_line_error(run(tmp_path, "chat", "--url", "http://127.0.0.1:9"), "cannot reach")
