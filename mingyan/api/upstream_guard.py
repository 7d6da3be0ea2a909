"""The content policy over a reply an upstream engine wrote (/v1 forwarded as it came): the same
output check as a local reply's (mingyan.safety.guarded), on OpenAI's chunk and completion shapes.

Streamed chunks are released at once unless their text ends with the beginning of a bank phrase;
such chunks are held until the phrase completes or the text goes another way. When a blocked phrase
completes, nothing of it has been sent: the held chunks are dropped and the stream ends with
`finish_reason: "content_filter"`. A whole (non-streamed) reply is checked before it is sent."""

from __future__ import annotations

from collections import deque
from typing import Any

from mingyan.safety.gate import Safety
from mingyan.safety.moderator import Verdict
from mingyan.safety.scanner import TextScanner


def _text(choice: dict[str, Any]) -> str:
    """A choice's text: a chat delta's or message's content, or a completion's text."""
    part = choice.get("delta") or choice.get("message") or {}
    value = part.get("content") if isinstance(part, dict) else None
    if value is None:
        value = choice.get("text")
    return value if isinstance(value, str) else ""


class ChunkGuard:
    """Checks one forwarded reply for `owner`; `verdict` is set when the policy stopped it."""

    def __init__(self, safety: Safety | None, owner: str) -> None:
        self.safety = safety if safety is not None and safety.enabled else None
        self.owner = owner
        self.verdict: Verdict | None = None
        self._scanners: dict[int, TextScanner] = {}
        self._released: dict[int, int] = {}  # raw characters of each choice sent so far
        self._held: deque[dict[str, Any]] = deque()

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks that may be sent now (after `chunk` arrived); when a blocked phrase completes,
        only the closing `content_filter` chunk (and `verdict` is set)."""
        if self.safety is None:
            return [chunk]
        choices = [c for c in chunk.get("choices") or [] if isinstance(c, dict)]
        for choice in choices:
            index = int(choice.get("index") or 0)
            scanner = self._scanners.setdefault(index, TextScanner(self.safety.moderator))
            text = _text(choice)
            if text and (hits := scanner.feed(text)):
                verdict = self.safety.moderator.verdict(hits)
                self._observe(verdict)
                if verdict.blocked:
                    self.verdict = verdict
                    self._held.clear()
                    return [_closing(chunk, index)]
        self._held.append(chunk)
        if any(c.get("finish_reason") for c in choices):
            return self.flush()
        ready = []
        while self._held and self._safe(self._held[0]):
            ready.append(self._held.popleft())
        return ready

    def flush(self) -> list[dict[str, Any]]:
        """Everything held (the reply ended without completing a phrase)."""
        ready, self._held = list(self._held), deque()
        for chunk in ready:
            self._count(chunk)
        return ready

    def check_whole(self, data: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed reply: a choice whose text the policy blocks is emptied and ends `content_filter`."""
        if self.safety is None:
            return data
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict) or not (text := _text(choice)):
                continue
            verdict = self.safety.moderator.check(text)
            if verdict.flagged:
                self._observe(verdict)
            if verdict.blocked:
                self.verdict = verdict
                if isinstance(choice.get("message"), dict):
                    choice["message"]["content"] = ""
                    choice["message"].pop("tool_calls", None)
                else:
                    choice["text"] = ""
                choice["finish_reason"] = "content_filter"
        return data

    def _safe(self, chunk: dict[str, Any]) -> bool:
        """Whether all of `chunk`'s text lies before where a phrase may be starting (counted if so)."""
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index") or 0)
            scanner = self._scanners[index]
            if self._released.get(index, 0) + len(_text(choice)) > scanner.safe_length():
                return False
        self._count(chunk)
        return True

    def _count(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            index = int(choice.get("index") or 0)
            self._released[index] = self._released.get(index, 0) + len(_text(choice))

    def _observe(self, verdict: Verdict) -> None:
        if self.safety is not None and self.safety.observer is not None:
            self.safety.observer("output", verdict, self.owner)


def _closing(chunk: dict[str, Any], index: int) -> dict[str, Any]:
    """The last chunk of a reply the policy stopped: no text, finish reason `content_filter`."""
    chat = chunk.get("object") == "chat.completion.chunk" or any(
        isinstance(c, dict) and "delta" in c for c in chunk.get("choices") or []
    )
    choice: dict[str, Any] = {"index": index, "finish_reason": "content_filter"}
    if chat:
        choice["delta"] = {}
    else:
        choice["text"] = ""
    closing: dict[str, Any] = {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}
    closing["choices"] = [choice]
    return closing
