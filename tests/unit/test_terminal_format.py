"""How the terminal chat shows stored conversations: pure functions of the server's JSON."""

from __future__ import annotations

import re

import pytest

from mingyan.terminal.format import (
    conversation_row,
    highlight,
    last_turns,
    message_line,
    omitted_note,
    path_messages,
    reply_ending,
    search_row,
)

STAMP = "2025-06-01T12:30:00.123456Z"


@pytest.mark.parametrize(
    "snippet, match, shown",
    [
        ("长城在北京吗？", [[3, 5]], "长城在[北京]吗？"),
        ("Tell me about the Great Wall", [[18, 23], [24, 28]], "Tell me about the [Great] [Wall]"),
        ("abcdef", [[3, 5], [1, 4]], "a[bcde]f"),  # overlapping ranges merge, order does not matter
        ("abc", [[2, 9], [1, 1]], "ab[c]"),  # out of range is clamped, empty ranges ignored
        ("line one\nline two", [], "line one line two"),  # always one line
    ],
)
def test_highlight_wraps_matches_in_brackets(snippet, match, shown) -> None:
    assert highlight(snippet, match) == shown


def test_conversation_row_has_number_title_pin_date_and_id() -> None:
    row = conversation_row(3, {"id": "a" * 32, "title": "测试对话", "pinned": True, "updated_at": STAMP})
    assert re.fullmatch(r" 3\. 测试对话 \[pinned\]  \d{4}-\d{2}-\d{2} \d{2}:\d{2}  a{32}", row)
    untitled = conversation_row(12, {"id": "b" * 32, "title": "", "pinned": False, "updated_at": STAMP})
    assert untitled.startswith("12. (untitled)  ") and "[pinned]" not in untitled


def test_search_row_names_the_conversation_and_who_said_it() -> None:
    hit = {
        "conversation_id": "c",
        "conversation_title": "旅行",
        "message_id": "m",
        "role": "user",
        "snippet": "…长城在北京吗？",
        "match": [[4, 6]],
        "archived": False,
        "updated_at": STAMP,
    }
    assert search_row(1, hit).startswith(" 1. 旅行 — you: …长城在[北京]吗？  2025-06-")
    title_hit = {**hit, "message_id": None, "role": None, "snippet": "旅行", "match": [[0, 2]], "archived": True}
    assert search_row(2, title_hit).startswith(" 2. 旅行 [archived] — title: [旅行]  ")


def test_last_turns_of_the_current_path() -> None:
    messages = [
        {"id": str(i), "role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}", "status": "complete"}
        for i in range(10)
    ]
    detail = {"messages": list(reversed(messages)), "current_path": [m["id"] for m in messages]}
    path = path_messages(detail)
    assert [m["id"] for m in path] == [str(i) for i in range(10)]
    assert [m["content"] for m in last_turns(path, 3)] == ["m4", "m5", "m6", "m7", "m8", "m9"]
    assert last_turns(path[:3], 3) == path[:3]


def test_message_line_says_when_a_reply_did_not_complete_and_shortens_long_text() -> None:
    assert message_line({"role": "user", "content": "hi", "status": "complete"}) == "you: hi"
    stopped = message_line({"role": "assistant", "content": "half", "status": "stopped"})
    assert stopped == "assistant: half  (reply stopped)"
    long = message_line({"role": "assistant", "content": "x" * 1000, "status": "complete"})
    assert len(long) < 420 and long.endswith("…")


def test_reply_endings_and_omitted_turns() -> None:
    assert reply_ending({"status": "complete"}) is None
    assert reply_ending({"status": "stopped"}) == "(reply stopped)"
    assert reply_ending({"status": "error", "error": "engine busy"}) == "(reply failed: engine busy)"
    assert "interrupted" in reply_ending({"status": "interrupted"})
    assert "deleted" in reply_ending(None)
    assert omitted_note(0) is None and omitted_note(None) is None
    assert omitted_note(1) == "(1 older turn was left out of the model's context to make room)"
    assert omitted_note(4).startswith("(4 older turns were left out")
