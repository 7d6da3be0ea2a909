"""The output guard: an engine stream checked as it comes. Text is released at once unless it ends
with the beginning of a bank phrase; that beginning is held until the phrase is complete or the
text goes another way. When a blocked phrase completes, generation is cancelled and the stream ends
at once with finish reason `content_filter`: no character of the phrase was ever released."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable

from mingyan.engine.base import EventStream, FinishReason, TokenEvent, Usage
from mingyan.safety.moderator import Moderator, Verdict
from mingyan.safety.scanner import TextScanner

Observer = Callable[[str, Verdict], None]  # (stage, verdict) for every check that matched


class GuardedStream:
    """An EventStream over `inner`; `verdict` is set when the guard stopped it."""

    stage = "output"

    def __init__(
        self,
        inner: EventStream,
        moderator: Moderator,
        *,
        prompt_tokens: int = 0,
        observer: Observer | None = None,
    ) -> None:
        self.inner = inner
        self.scanner = TextScanner(moderator)
        self.moderator = moderator
        self.prompt_tokens = prompt_tokens
        self.observer = observer
        self.verdict: Verdict | None = None

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        return self._events()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _flagged(self, text: str) -> Verdict | None:
        hits = self.scanner.feed(text)
        if not hits:
            return None
        verdict = self.moderator.verdict(hits)
        if self.observer is not None:
            self.observer("output", verdict)
        return verdict

    async def _events(self) -> AsyncIterator[TokenEvent]:
        held: deque[TokenEvent] = deque()
        released = generated = 0  # raw characters released; events read
        async for event in self.inner:
            generated += 1
            verdict = self._flagged(event.text) if event.text else None
            if verdict is not None and verdict.blocked:
                self.verdict = verdict
                await self.inner.aclose()
                usage = Usage(prompt_tokens=self.prompt_tokens, completion_tokens=generated)
                yield TokenEvent("", FinishReason.CONTENT_FILTER, usage=usage)
                return
            if event.finish_reason is not None:
                while held:
                    yield held.popleft()
                yield event
                continue  # let the engine's stream end by itself (closing it now would count as a cancel)
            held.append(event)
            safe = self.scanner.safe_length()
            while held and released + len(held[0].text) <= safe:
                released += len(held[0].text)
                yield held.popleft()
        while held:  # the engine's stream ended without a finish event: release what was checked
            yield held.popleft()
