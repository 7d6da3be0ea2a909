"""`mingyan users ...` as an administrator runs it: a real process on a real SQLite file."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mingyan.engine.llamacpp.prefix_cache import scope_id
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, open_database
from tests.conftest import mingyan_env

PASSWORD = "correct horse 电池"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'accounts.db'}"


@pytest.fixture
def accounts(url: str) -> Iterator[AccountStore]:
    """The same database, opened in this process to check what the command did."""
    users(url, "list")  # migrates it
    engine = open_database(url)
    yield AccountStore.open(Database(engine))
    engine.dispose()


def users(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    data_dir = Path(url.removeprefix("sqlite:///")).parent / "data"
    return subprocess.run(
        [sys.executable, "-m", "mingyan", "users", *args, "--database-url", url],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=mingyan_env(data_dir),
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_create_with_password_from_stdin(url: str, accounts: AccountStore) -> None:
    assert "created 张三 (admin)" in ok(
        users(url, "create", "张三", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    )
    assert "created alice (user)" in ok(users(url, "create", "alice", "--password-stdin", stdin=PASSWORD))
    zhang = accounts.users.authenticate("张三", PASSWORD)
    assert zhang is not None and zhang.is_admin and accounts.users.has_admin()
    assert accounts.users.authenticate("ALICE", PASSWORD) is not None
    listing = ok(users(url, "list")).splitlines()
    assert listing[0].split() == ["NAME", "ROLE", "STATUS", "CREATED"]
    assert [line.split()[:3] for line in listing[1:]] == [
        ["alice", "user", "active"],
        ["张三", "admin", "active"],
    ]
    events = accounts.ledger.audit_events()
    assert [(e.event, e.actor_name, e.target, e.details) for e in events] == [
        ("user_created", "cli", "alice", {"role": "user"}),
        ("user_created", "cli", "张三", {"role": "admin"}),
    ]


def test_refusals_are_one_line(url: str, accounts: AccountStore) -> None:
    ok(users(url, "create", "Alice", "--password-stdin", stdin=PASSWORD))
    one_line_error(users(url, "create", "ALICE", "--password-stdin", stdin=PASSWORD), "ALICE", "taken")
    one_line_error(users(url, "create", "bob", stdin=PASSWORD + "\n"), "not a terminal", "--password-stdin")
    one_line_error(users(url, "create", "bob", "--password-stdin", stdin="short\n"), "at least 8")
    one_line_error(users(url, "create", "bob", "--password-stdin", stdin=""), "no password")
    one_line_error(users(url, "create", "bob smith", "--password-stdin", stdin=PASSWORD), "username")
    one_line_error(users(url, "passwd", "Alice", stdin=PASSWORD), "--password-stdin")
    one_line_error(users(url, "disable", "nobody"), "no user nobody")
    assert [u.username for u in accounts.users.list_users()] == ["Alice"]
    assert accounts.users.authenticate("alice", PASSWORD) is not None


def test_disable_enable_passwd_and_delete(url: str, accounts: AccountStore) -> None:
    ok(users(url, "create", "root", "--admin", "--password-stdin", stdin=PASSWORD))
    alice = accounts.users.create_user("alice", PASSWORD)
    token, _ = accounts.users.create_session(alice.id, ttl_s=3600)
    _, key = accounts.keys.create_key(alice.id, "script")
    conversation = ConversationStore(accounts.db).create_conversation(alice.id, title="hers")

    ok(users(url, "disable", "ALICE"))
    assert "disabled" in ok(users(url, "list"))
    assert accounts.users.resolve_session(token) is None and accounts.keys.resolve_key(key) is None
    ok(users(url, "enable", "alice"))
    assert accounts.keys.resolve_key(key) is not None

    ok(users(url, "passwd", "alice", "--password-stdin", stdin="a new password\n"))
    assert accounts.users.authenticate("alice", PASSWORD) is None
    assert accounts.users.authenticate("alice", "a new password") is not None

    one_line_error(users(url, "delete", "alice"), "--yes")
    assert accounts.users.find_user("alice") is not None
    kv = Path(url.removeprefix("sqlite:///")).parent / "kv"
    for owner in (alice.id, "someone-else"):  # saved KV states of two models: hers go, others stay
        for model in ("model-a", "model-b"):
            (kv / model / scope_id(owner)).mkdir(parents=True)
            (kv / model / scope_id(owner) / "state.kv").write_bytes(b"tokens")
    assert "deleted alice and 1 conversation(s)" in ok(users(url, "delete", "alice", "--yes", "--kv-dir", str(kv)))
    assert not list(kv.glob(f"*/{scope_id(alice.id)}")) and len(list(kv.glob("*/*/state.kv"))) == 2
    assert accounts.users.find_user("alice") is None and accounts.keys.resolve_key(key) is None
    assert ConversationStore(accounts.db).list_conversations(alice.id) == []
    assert conversation.owner == alice.id
    one_line_error(users(url, "disable", "root"), "last enabled admin")
    assert [e.event for e in accounts.ledger.audit_events()][:5] == [
        "user_deleted",
        "password_changed",
        "user_enabled",
        "user_disabled",
        "user_created",
    ]


def test_usage_and_quota(url: str, accounts: AccountStore) -> None:
    assert "no usage recorded" in ok(users(url, "usage"))
    alice = accounts.users.create_user("alice", PASSWORD)
    gone = accounts.users.create_user("bob", PASSWORD)
    accounts.ledger.record_usage(
        alice.id, route="/v1/chat/completions", prompt_tokens=12, cached_tokens=4, completion_tokens=30
    )
    accounts.ledger.record_usage(gone.id, route="/v1/chat/completions", prompt_tokens=1, completion_tokens=1)
    accounts.users.delete_user(gone.id)
    table = [line.split() for line in ok(users(url, "usage")).splitlines()]
    assert table == [
        ["USER", "REQUESTS", "PROMPT", "CACHED", "COMPLETION"],
        ["alice", "1", "12", "4", "30"],
        ["bob", "(deleted)", "1", "1", "0", "1"],
    ]
    assert "no usage recorded since 2999-01-01" in ok(users(url, "usage", "--since", "2999-01-01"))
    one_line_error(users(url, "usage", "--since", "yesterday"), "--since")

    shown = ok(users(url, "quota", "alice", "--tokens-per-day", "5000", "--concurrent-streams", "2"))
    assert shown.splitlines() == [
        "requests_per_minute: default",
        "tokens_per_day: 5000",
        "concurrent_streams: 2",
    ]
    ok(users(url, "quota", "alice", "--concurrent-streams", "default"))
    shown = ok(users(url, "quota", "alice"))
    assert shown.splitlines()[1:] == ["tokens_per_day: 5000", "concurrent_streams: default"]
    one_line_error(users(url, "quota", "alice", "--tokens-per-day", "lots"), "--tokens-per-day")
    one_line_error(users(url, "quota", "alice", "--tokens-per-day", "-5"), "tokens_per_day")
    [changed, *_] = accounts.ledger.audit_events(event="quota_changed")
    assert (changed.actor_name, changed.target) == ("cli", "alice")
    assert changed.details == {"concurrent_streams": None}


def test_the_password_prompt_asks_twice_at_a_terminal(url: str, accounts: AccountStore) -> None:
    assert "created carol" in at_terminal(url, ["create", "carol"], [PASSWORD, PASSWORD])
    assert accounts.users.authenticate("carol", PASSWORD) is not None
    assert "do not match" in at_terminal(url, ["create", "dave"], [PASSWORD, PASSWORD + "x"])
    assert accounts.users.find_user("dave") is None


def at_terminal(url: str, args: list[str], answers: list[str]) -> str:
    """Run `mingyan users ARGS` on a pseudo-terminal, typing each answer after its prompt."""
    import pty

    controller, terminal = pty.openpty()
    data_dir = Path(url.removeprefix("sqlite:///")).parent / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "mingyan", "users", *args, "--database-url", url],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=mingyan_env(data_dir),
        start_new_session=True,  # no controlling terminal: getpass falls back to the pty on stdin
    )
    os.close(terminal)
    screen = bytearray()
    try:
        for answer in answers:
            prompts = screen.count(b": ")
            _read(controller, screen, until=lambda seen=prompts: screen.count(b": ") > seen)
            os.write(controller, answer.encode() + b"\n")
        _read(controller, screen, until=lambda: False)  # to the end
        process.wait(timeout=60)
    finally:
        process.kill()
        os.close(controller)
    return screen.decode(errors="replace")


def _read(fd: int, screen: bytearray, *, until: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not until():
        assert time.monotonic() < deadline, bytes(screen)
        if not select.select([fd], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the process exited and closed the terminal
            return
        if not chunk:
            return
        screen += chunk


ACTIONS = ["create", "list", "disable", "enable", "delete", "passwd", "usage", "quota"]


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_has_help(url: str, action: str) -> None:
    result = users(url, action, "--help")
    assert result.returncode == 0 and "usage: mingyan users " + action in result.stdout
    assert "--database-url" in result.stdout and "--data-dir" in result.stdout


def test_create_refuses_a_lookalike_of_an_existing_name(url: str, accounts: AccountStore) -> None:
    ok(users(url, "create", "admin", "--admin", "--password-stdin", stdin=PASSWORD + "\n"))
    for lookalike in ("аdmin", "admın", "ΑDMIN", "adrnin"):  # Cyrillic а, dotless ı, Greek Α, r+n
        one_line_error(
            users(url, "create", lookalike, "--password-stdin", stdin=PASSWORD + "\n"),
            "looks like the existing username admin",
        )
    ok(users(url, "create", "admiral", "--password-stdin", stdin=PASSWORD + "\n"))
    assert [u.username for u in accounts.users.list_users()] == ["admin", "admiral"]
