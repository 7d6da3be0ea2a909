"""How the terminal chat shows stored conversations: list rows, search hits, recent turns, reply endings.

Pure functions of the server's JSON, so they are easy to test and to read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

UNTITLED = "(untitled)"
TURN_CHARS = 400  # a resumed conversation shows at most this much of each old message
ROLE_LABELS = {"user": "you", "assistant": "assistant", "system": "system", None: "title"}
STATUS_NOTES = {
    "stopped": "reply stopped",
    "interrupted": "reply interrupted (the server stopped before it ended)",
    "streaming": "reply still being generated",
    "refused": "refused by the content policy",
}

Json = Mapping[str, Any]


def local_time(stamp: str) -> str:
    """`2025-06-01T12:00:00.123Z` as local `2025-06-01 14:00`; the input as is when it is not a date."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def one_line(text: str) -> str:
    return " ".join(text.split())


def shorten(text: str, limit: int = TURN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def highlight(snippet: str, match: Iterable[Sequence[int]]) -> str:
    """Wrap each matched range [start, end) of `snippet` in `[` `]`; overlapping ranges merge."""
    ranges: list[list[int]] = []
    for start, end in sorted((max(0, int(s)), min(len(snippet), int(e))) for s, e in match):
        if start >= end:
            continue
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            ranges.append([start, end])
    parts, at = [], 0
    for start, end in ranges:
        parts += [snippet[at:start], "[", snippet[start:end], "]"]
        at = end
    parts.append(snippet[at:])
    return one_line("".join(parts))


def conversation_row(number: int, conversation: Json) -> str:
    """` 1. title [pinned]  2025-06-01 14:00  id`."""
    title = one_line(conversation.get("title") or "") or UNTITLED
    pinned = " [pinned]" if conversation.get("pinned") else ""
    return f"{number:>2}. {title}{pinned}  {local_time(conversation['updated_at'])}  {conversation['id']}"


def search_row(number: int, hit: Json) -> str:
    """` 1. title — you: …text with [match]…  2025-06-01 14:00`."""
    title = one_line(hit.get("conversation_title") or "") or UNTITLED
    archived = " [archived]" if hit.get("archived") else ""
    role = ROLE_LABELS.get(hit.get("role"), str(hit.get("role")))
    snippet = highlight(hit.get("snippet") or "", hit.get("match") or [])
    return f"{number:>2}. {title}{archived} — {role}: {snippet}  {local_time(hit['updated_at'])}"


def path_messages(detail: Json) -> list[Json]:
    """The messages of a conversation's current path, root first."""
    by_id = {m["id"]: m for m in detail.get("messages", [])}
    return [by_id[i] for i in detail.get("current_path", []) if i in by_id]


def last_turns(messages: Sequence[Json], count: int = 3) -> list[Json]:
    """The messages of the last `count` turns (a turn starts at a user message)."""
    starts = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if len(starts) <= count:
        return list(messages)
    return list(messages[starts[-count] :])


def message_line(message: Json) -> str:
    label = ROLE_LABELS.get(message.get("role"), str(message.get("role")))
    status = message.get("status")
    note = f"  ({STATUS_NOTES.get(status, status)})" if status not in ("complete", None) else ""
    return f"{label}: {shorten(message.get('content') or '')}{note}"


def reply_ending(message: Json | None) -> str | None:
    """One line when a reply did not end normally, else None."""
    if message is None:
        return "(the conversation was deleted while the reply was being generated)"
    status = message.get("status")
    if status == "complete":
        return None
    if status == "error":
        return f"(reply failed: {message.get('error') or 'unknown error'})"
    return f"({STATUS_NOTES.get(str(status), f'reply ended: {status}')})"


def omitted_note(omitted_turns: int | None) -> str | None:
    if not omitted_turns:
        return None
    turns = "turn was" if omitted_turns == 1 else "turns were"
    return f"({omitted_turns} older {turns} left out of the model's context to make room)"
