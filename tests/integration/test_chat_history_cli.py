"""`mingyan chat --url` inside the conversations a real server stores: what a user types and sees.

A real `mingyan serve` on SmolLM2; the chat runs as the user runs it (`python -m mingyan chat`), with
its input on stdin; what the server stored is read back through /api."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SMOLLM, mingyan_env, start_server, stop_server

SHORT = ("--max-tokens", "8")
DATE = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"
LONG_ANSWER = "Count from 1 to 300, one number per line, in words and digits."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("chat-history"), SMOLLM, "--n-ctx", "2048", "--no-auto-titles")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def api(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api", timeout=120) as client:
        yield client


def chat(tmp_path, *args: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mingyan", "chat", *args],
        check=False,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=mingyan_env(tmp_path),
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def listing(out: str) -> list[list[str]]:
    """The /list outputs in `out`: each a list of its numbered rows."""
    blocks: list[list[str]] = []
    previous_numbered = False
    for line in out.splitlines():
        numbered = re.match(rf"\s*\d+\. .*  {DATE}  [0-9a-f]{{32}}$", line) is not None
        if numbered and not previous_numbered:
            blocks.append([])
        if numbered:
            blocks[-1].append(line)
        previous_numbered = numbered
    return blocks


def newest(api: httpx.Client) -> dict:
    return api.get(f"/conversations/{api.get('/conversations').json()['data'][0]['id']}").json()


def path_of(detail: dict) -> list[dict]:
    by_id = {m["id"]: m for m in detail["messages"]}
    return [by_id[i] for i in detail["current_path"]]


def test_chat_stores_lists_titles_and_resumes_conversations(tmp_path, server, api) -> None:
    script = "hello\n/list\n/title 测试对话\n/new\nsecond\n/list\n/resume 2\n/resume 99\n/help\n/exit\n"
    out = ok(chat(tmp_path, "--url", server.url, *SHORT, "--system", "Be brief.", stdin=script))
    first, second = listing(out)
    assert re.match(r" 1\. \(untitled\)  ", first[0])
    assert re.match(r" 1\. \(untitled\)  ", second[0]) and re.match(r" 2\. 测试对话  ", second[1])
    assert "(renamed: 测试对话)" in out and "(your next message starts a new conversation" in out
    assert "(resumed 测试对话: 1 turn)" in out and "\nyou: hello\n" in out
    assert "error: no conversation number 99" in out
    assert "/list" in out and "/search TEXT" in out and "/resume N|ID" in out  # /help
    titled_id = second[1].split()[-1]
    detail = api.get(f"/conversations/{titled_id}").json()
    assert detail["title"] == "测试对话" and detail["system_prompt"] == "Be brief."
    messages = path_of(detail)
    assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "complete")]
    assert messages[0]["content"] == "hello" and messages[1]["content"]
    assert messages[1]["content"].strip() in out  # the reply the user saw is the one stored
    assert messages[1]["completion_tokens"] <= 8
    listed = api.get("/conversations").json()["data"]
    assert [c["id"] for c in listed[:2]] == [second[0].split()[-1], titled_id]


def test_list_flag_and_resume_flag_continue_the_same_conversation(tmp_path, server, api) -> None:
    ok(chat(tmp_path, "--url", server.url, *SHORT, stdin="What is the sea?\n"))
    cid = newest(api)["id"]
    out = ok(chat(tmp_path, "--url", server.url, "--list"))
    rows = listing(out)[0]
    assert rows[0].endswith(cid) and re.search(DATE, rows[0]) and len(rows) <= 20
    assert "mingyan chat" not in out  # printed and left, no chat
    out = ok(chat(tmp_path, "--url", server.url, *SHORT, "--resume", cid, stdin="And the sky?\n"))
    assert out.startswith("(resumed (untitled): 1 turn)\nyou: What is the sea?\nassistant: ")
    messages = path_of(api.get(f"/conversations/{cid}").json())
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2]["content"] == "And the sky?" and messages[3]["status"] == "complete"


def test_search_flag_and_command(tmp_path, server, api) -> None:
    ok(chat(tmp_path, "--url", server.url, *SHORT, stdin="Tell me about the Great Wall of China.\n"))
    cid = newest(api)["id"]
    out = ok(chat(tmp_path, "--url", server.url, "--search", "great wall"))
    first = out.splitlines()[0]
    assert first.startswith(" 1. (untitled) — ") and "[Great]" in first and "[Wall]" in first
    assert re.search(DATE, first)
    assert "(nothing found for 'zqxjkv')" in ok(chat(tmp_path, "--url", server.url, "--search", "zqxjkv"))
    out = ok(chat(tmp_path, "--url", server.url, *SHORT, stdin="/search Great Wall\n/resume 1\n/exit\n"))
    assert "you: Tell me about the Great Wall of China." in out and "(resumed (untitled): 1 turn)" in out
    assert newest(api)["id"] == cid  # resuming wrote nothing


def test_resume_attaches_to_a_reply_still_being_generated(tmp_path, server, api) -> None:
    cid = api.post("/conversations", json={}).json()["id"]
    body = {"content": LONG_ANSWER, "settings": {"max_tokens": 300}}
    with api.stream("POST", f"/conversations/{cid}/messages", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["type"] == "start":
                break  # the client leaves; the server goes on
    out = ok(chat(tmp_path, "--url", server.url, "--resume", cid, stdin="/exit\n"))
    reply = path_of(api.get(f"/conversations/{cid}").json())[-1]
    assert reply["status"] == "complete" and reply["content"]
    assert f"you: {LONG_ANSWER}\nassistant: {reply['content']}" in out  # all of it, not a shortened line


class Reader(threading.Thread):
    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream, self.text = stream, ""

    def run(self) -> None:
        while chunk := self.stream.read(1):
            self.text += chunk


def test_ctrl_c_stops_the_reply_keeps_it_and_the_chat_goes_on(tmp_path, server, api) -> None:
    # Greedy, so the reply is the long count every time (sampled, the small model sometimes answered
    # in one short sentence that ended before the interrupt arrived).
    cid = api.post("/conversations", json={"settings": {"temperature": 0}}).json()["id"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mingyan", "chat", "--url", server.url, "--max-tokens", "300", "--resume", cid],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mingyan_env(tmp_path),
    )
    reader = Reader(process.stdout)
    reader.start()
    process.stdin.write(LONG_ANSWER + "\n")
    process.stdin.flush()
    deadline = time.monotonic() + 120
    while not re.search(r"mingyan chat — [^\n]*\n[\s\S]", reader.text):  # the reply has begun
        assert time.monotonic() < deadline and process.poll() is None, reader.text
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    while "(stopped" not in reader.text:
        assert time.monotonic() < deadline and process.poll() is None, reader.text
        time.sleep(0.05)
    process.stdin.write("Say hi.\n/exit\n")
    process.stdin.close()
    assert process.wait(timeout=300) == 0
    reader.join(timeout=10)
    assert "Traceback" not in process.stderr.read() + reader.text
    assert "(stopped; the partial reply is kept in the conversation)" in reader.text
    messages = path_of(newest(api))
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "stopped"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert messages[1]["content"] and messages[1]["finish_reason"] == "cancelled"


def test_old_turns_left_out_of_the_context_are_reported(tmp_path) -> None:
    small = start_server(tmp_path, SMOLLM, "--n-ctx", "256", "--no-auto-titles")
    try:
        words = "sea " * 120
        out = ok(chat(tmp_path, "--url", small.url, *SHORT, stdin=f"Count: {words}\nAgain: {words}\n"))
    finally:
        stop_server(small)
    notes = [line for line in out.splitlines() if "left out of the model's context" in line]
    assert notes == ["(1 older turn was left out of the model's context to make room)"], out


def test_errors_are_one_line(tmp_path, server, api) -> None:
    one_line_error(chat(tmp_path, "--url", server.url, "--resume", "nosuchconversation"), "nosuchconversation")
    one_line_error(chat(tmp_path, "--list"), "--list", "--url")
    one_line_error(chat(tmp_path, "--search", "sea"), "--search", "--url")
    one_line_error(chat(tmp_path, "--url", server.url, "--no-history", "--list"), "--no-history")
    one_line_error(chat(tmp_path, "--url", "http://127.0.0.1:9", "--list"), "cannot reach")
    out = ok(chat(tmp_path, "--url", server.url, stdin="/resume nosuchconversation\n/title\n/search\n/exit\n"))
    assert out.splitlines()[1:] == [
        "error: No conversation nosuchconversation.",
        "error: usage: /title TEXT",
        "error: usage: /search TEXT",
    ]
    one_line_error(chat(tmp_path, "--url", server.url, "--search", "x" * 300), "q")  # the server's 400


def test_a_server_that_stores_no_conversations_needs_no_history(tmp_path) -> None:
    """A mingyan app without a history database (the engine does not matter here: a fake one)."""
    from mingyan.api.app import create_app
    from mingyan.config import Settings
    from mingyan.engine.fake import FakeEngine
    from tests.app_server import serve_app

    with serve_app(create_app(Settings(), FakeEngine(n_ctx=512), store=None)) as url:
        one_line_error(chat(tmp_path, "--url", url, stdin="hi\n"), "does not store conversations", "--no-history")
        assert "You said: hi" in ok(chat(tmp_path, "--url", url, "--no-history", stdin="hi\n"))


def test_no_history_keeps_the_history_in_the_terminal(tmp_path, server, api) -> None:
    before = api.get("/conversations", params={"limit": 200}).json()["data"]
    out = ok(chat(tmp_path, "--url", server.url, "--no-history", *SHORT, stdin="hello\n/list\n/reset\n"))
    assert "(conversation cleared)" in out and "/list" not in out.splitlines()[0]
    assert api.get("/conversations", params={"limit": 200}).json()["data"] == before
