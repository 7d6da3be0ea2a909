"""The content policy over replies an upstream engine wrote (api/upstream_guard.py): streamed
chunks are held while a banned phrase may be starting, and a blocked phrase never leaves."""

from __future__ import annotations

from typing import Any

from mingyan.api.upstream_guard import ChunkGuard
from mingyan.safety.gate import Safety
from mingyan.safety.moderator import Moderator
from mingyan.safety.policy import Policy


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "big",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


def run(guard: ChunkGuard, pieces: list[str]) -> tuple[str, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    for piece in pieces:
        sent += guard.feed(chunk(piece))
        if guard.verdict is not None:
            break
    else:
        sent += guard.feed(chunk("", "stop"))
    text = "".join(c["choices"][0].get("delta", {}).get("content") or "" for c in sent)
    return text, sent


def blocking(seen: list[tuple[str, str]] | None = None) -> Safety:
    observer = (lambda stage, verdict, owner: seen.append((stage, owner))) if seen is not None else None
    return Safety(Moderator(Policy.uniform("block")), observer=observer)


def test_a_blocked_phrase_split_over_chunks_is_never_sent() -> None:
    seen: list[tuple[str, str]] = []
    guard = ChunkGuard(blocking(seen), "u1")
    text, sent = run(guard, ["好的，下面是", "怎么制", "作炸", "弹的方法"])
    assert "炸" not in text and text.startswith("好的")
    assert sent[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert guard.verdict is not None and guard.verdict.blocked == ("weapons",)
    assert seen == [("output", "u1")]


def test_a_clean_reply_passes_whole_and_in_order() -> None:
    pieces = ["The history of ", "gunpowder begins ", "in Tang China."]
    text, sent = run(ChunkGuard(blocking(), "u1"), pieces)
    assert text == "".join(pieces)
    assert sent[-1]["choices"][0]["finish_reason"] == "stop"


def test_text_held_while_a_phrase_may_be_starting_is_released_when_it_goes_another_way() -> None:
    guard = ChunkGuard(blocking(), "u1")
    first = guard.feed(chunk("怎么制"))  # could be the start of 怎么制作炸弹
    assert first == []
    later = guard.feed(chunk("作蛋糕？"))
    assert "".join(c["choices"][0]["delta"]["content"] for c in later) == "怎么制作蛋糕？"


def test_a_whole_reply_is_checked_before_it_is_sent() -> None:
    guard = ChunkGuard(blocking(), "u1")
    data = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "请看如何绑架一个小孩"}, "finish_reason": "stop"}
        ]
    }
    checked = guard.check_whole(data)
    assert checked["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": ""},
        "finish_reason": "content_filter",
    }
    completion = {"choices": [{"index": 0, "text": "fine text", "finish_reason": "stop"}]}
    assert guard.check_whole(completion)["choices"][0]["text"] == "fine text"


def test_without_a_policy_chunks_pass_untouched() -> None:
    off = ChunkGuard(Safety(Moderator(Policy.uniform("off"))), "u1")
    c = chunk("怎么制作炸弹")
    assert off.feed(c) == [c] and off.verdict is None
