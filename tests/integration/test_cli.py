"""The `mingyan` command as a user runs it: help, one-line errors, terminal chat."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import SMOLLM, mingyan_env


def run(tmp_path, *args, stdin="", timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mingyan", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=mingyan_env(tmp_path),
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


def test_unknown_embedding_model_is_one_line(tmp_path):
    result = run(tmp_path, "serve", "--model", SMOLLM, "--embedding-model", "no-such-embedder")
    assert_one_line_error(result, "no-such-embedder")


def test_invalid_setting_is_one_line(tmp_path):
    assert_one_line_error(run(tmp_path, "serve", "--port", "99999"), "port")


def test_in_process_terminal_chat(tmp_path):
    script = "/system You answer in one short sentence.\nHello!\n/reset\n你好\n/help\n/exit\n"
    result = run(tmp_path, "chat", "--model", SMOLLM, "--n-ctx", "1024", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(system prompt set" in out and "(conversation cleared)" in out and "/reset" in out
    banners = ("(", "mingyan chat", "commands")
    replies = [line for line in out.splitlines() if line.strip() and not line.startswith(banners)]
    assert len(replies) >= 2, out


def test_terminal_chat_against_server(tmp_path, smollm_server):
    result = run(tmp_path, "chat", "--url", smollm_server.url, stdin="What is the sea?\n")
    assert result.returncode == 0, result.stderr
    assert f"connected to {SMOLLM}" in result.stderr
    assert len(result.stdout.strip().splitlines()) >= 2


def test_terminal_chat_unreachable_server_is_one_line(tmp_path):
    assert_one_line_error(run(tmp_path, "chat", "--url", "http://127.0.0.1:9"), "cannot reach")


def test_db_upgrade_creates_the_history_database(tmp_path):
    result = run(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mingyan.db").exists() and "up to date" in result.stdout
    assert run(tmp_path, "db", "upgrade").returncode == 0  # idempotent


def test_db_upgrade_unreachable_database_is_one_line_without_the_password(tmp_path):
    result = run(tmp_path, "db", "upgrade", "--database-url", "postgresql+psycopg://u:s3cret@127.0.0.1:9/x")
    assert_one_line_error(result, "cannot migrate the database")
    assert "s3cret" not in result.stderr


def test_serve_marks_answers_cut_by_a_crash_as_interrupted(tmp_path):
    from mingyan.store.conversations import ConversationStore
    from mingyan.store.db import Database, default_url
    from mingyan.store.migrate import upgrade
    from tests.conftest import start_server, stop_server

    url = default_url(tmp_path)
    upgrade(url)
    store = ConversationStore(Database.open(url))
    conversation = store.create_conversation("someone", title="t")
    store.add_message("someone", conversation.id, "user", "你好")
    answer = store.start_assistant_message("someone", conversation.id)
    store.save_partial("someone", answer.id, "你好！我")
    store.engine.dispose()
    server = start_server(tmp_path, SMOLLM, "--n-ctx", "512")
    stop_server(server)
    store = ConversationStore(Database.open(url))
    message = store.get_message("someone", answer.id)
    assert message.status == "interrupted" and message.content == "你好！我"
