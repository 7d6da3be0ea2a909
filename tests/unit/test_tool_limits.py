"""Tool limits are settings (and flags): an approval that times out is denied, audited and given
to the model as the call's result; results are cut and loops end at the configured sizes; the
daily token quota counts every step of a tool loop. A fake engine writes the calls; the tools are
the test MCP server over stdio; real HTTP, real SQLite."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.cli.flags import settings_from_args
from mingyan.cli.main import build_parser, main
from mingyan.config import Settings
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from mingyan.tools.registry import Limits
from tests.app_server import serve_app
from tests.unit.test_accounts_api import PASSWORD, sign_in
from tests.unit.test_tool_loop import Setup, call, send, serving
from tests.unit.test_tool_servers import SERVER_SCRIPT

DESCRIPTION = "The names and values of this tool server's environment variables."


def path_of(client: httpx.Client, cid: str) -> list[dict]:
    tree = client.get(f"/api/conversations/{cid}").json()
    by_id = {m["id"]: m for m in tree["messages"]}
    return [by_id[i] for i in tree["current_path"]]


def test_an_approval_that_times_out_is_denied_audited_and_the_reply_completes(tmp_path: Path) -> None:
    replies = [call("send_email", to="c@example.com", body="late"), "Not sent: nobody approved."]
    with serving(tmp_path, replies, tool_approval_timeout_s=1) as (client, setup):
        seen = send(client, "mail c")
        pending = next(e for e in seen if e["type"] == "tool_pending")["message"]
        result = next(e for e in seen if e["type"] == "tool_result")["message"]
        assert result["id"] == pending["id"] and result["status"] == "complete"
        assert result["tool"]["approval"] == "timeout" and result["tool"]["error"] == "timed out"
        assert result["content"] == "error: the user's approval of this call timed out; it did not run"
        assert not setup.outbox.exists()  # the call never ran
        done = seen[-1]["message"]
        assert done["status"] == "complete" and done["content"] == "Not sent: nobody approved."
        # the model's next turn had the denial as the call's result
        assert "approval of this call timed out" in setup.engine.detokenize(setup.engine.requests[-1].prompt_tokens)
        stored = path_of(client, done["conversation_id"])
        assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant"]
        assert stored[2]["tool"]["approval"] == "timeout"
        entries = client.get("/api/admin/audit", params={"event": "tool_call_approval_timeout"}).json()["data"]
        assert len(entries) == 1 and entries[0]["target"] == result["id"] and entries[0]["actor_name"] == "local"
        assert entries[0]["details"] == {
            "conversation": done["conversation_id"],
            "server": "local",
            "tool": "send_email",
            "arguments_sha256": hashlib.sha256(pending["tool"]["arguments"].encode()).hexdigest(),
            "outcome": "timeout",
        }
        late = client.post(
            f"/api/conversations/{done['conversation_id']}/messages/{result['id']}/approval", json={"approve": True}
        )
        assert late.status_code == 409 and not setup.outbox.exists()


def test_result_size_and_model_turns_are_settings(tmp_path: Path) -> None:
    replies = [call("environment"), call("environment")]  # the second is offered no tools: it stays text
    with serving(tmp_path, replies, tool_result_chars=100, tool_max_steps=2, tool_call_timeout_s=60) as (client, setup):
        seen = send(client, "env")
        done = seen[-1]["message"]
        stored = path_of(client, done["conversation_id"])
        assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant"]
        result = stored[2]
        assert len(result["content"]) == 100 and result["tool"]["truncated"] is True
        assert result["tool"]["result_size"] > 100
        assert done["status"] == "complete" and done["content"] == replies[1] and done["tool"] is None
        offered = [setup.engine.detokenize(r.prompt_tokens) for r in setup.engine.requests]
        assert [DESCRIPTION in prompt for prompt in offered] == [True, False]  # the last turn: no tools


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--tool-call-timeout-s", "0"),
        ("--tool-list-timeout-s", "-1"),
        ("--tool-result-chars", "10"),
        ("--tool-max-steps", "1"),
        ("--tool-approval-timeout-s", "100000"),
    ],
)
def test_a_bad_tool_limit_is_a_clear_error(flag: str, value: str, capsys) -> None:
    assert main(["serve", flag, value]) == 1
    err = capsys.readouterr().err
    assert f"invalid setting {flag[2:].replace('-', '_')}" in err, err


def test_a_flag_sets_the_limit() -> None:
    args = build_parser().parse_args(["serve", "--tool-call-timeout-s", "2.5", "--tool-max-steps", "6"])
    limits = Limits.from_settings(settings_from_args(args))
    assert (limits.call_timeout_s, limits.max_steps, limits.approval_timeout_s) == (2.5, 6, 120.0)


@pytest.fixture
def accounts_app(tmp_path: Path) -> Iterator[tuple[str, AccountStore, Setup]]:
    """Accounts (root, an administrator; bob, a user), the test MCP server registered as `local`."""
    setup = Setup(tmp_path, [call("get_weather", city="北京"), "北京今天晴。"])
    url = default_url(tmp_path)
    upgrade(url)
    engine = open_database(url)
    store = ConversationStore(Database(engine))
    accounts = AccountStore.open(store.db)
    accounts.users.create_user("root", PASSWORD, role="admin")
    accounts.users.create_user("bob", PASSWORD)
    settings = Settings(auto_titles=False, data_dir=tmp_path, quota_requests_per_minute=0)
    with serve_app(create_app(settings, setup.engine, store=store)) as base:
        admin = sign_in(base, "root")
        body = {"name": "local", "kind": "stdio", "command": sys.executable, "args": [SERVER_SCRIPT]}
        assert admin.post("/api/admin/tool-servers", json=body).status_code == 201
        yield base, accounts, setup
    engine.dispose()


def test_the_daily_token_quota_counts_every_step_of_a_tool_loop(accounts_app) -> None:
    base, accounts, setup = accounts_app
    bob = sign_in(base, "bob")
    seen = send(bob, "北京今天天气怎么样？")
    done = seen[-1]["message"]
    steps = [m for m in path_of(bob, done["conversation_id"]) if m["role"] == "assistant"]
    assert len(steps) == 2 and steps[0]["tool"]["calls"]
    per_step = [m["prompt_tokens"] + m["completion_tokens"] for m in steps]
    deadline = time.monotonic() + 10
    while not (usage := bob.get("/api/usage").json()["data"]) or not usage[0]["requests"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # recorded just after the reply ends
    usage = usage[0]
    assert usage["requests"] == 1
    assert usage["prompt_tokens"] + usage["completion_tokens"] == sum(per_step)
    # a daily quota the first step alone stays under is used up by the whole loop
    user_id = accounts.users.find_user("bob").id
    accounts.ledger.set_quota(user_id, tokens_per_day=per_step[0] + 1)
    cid = bob.post("/api/conversations", json={}).json()["id"]
    refused = bob.post(f"/api/conversations/{cid}/messages", json={"content": "again", "tools": ["local"]})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"
