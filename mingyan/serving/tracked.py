"""An event stream that tells its model when it ends, so a model with replies in flight is never unloaded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from mingyan.engine.base import EventStream, TokenEvent


class TrackedStream:
    """Wraps an engine's stream; `done` runs once, when the stream ends or is closed (even unread)."""

    def __init__(self, inner: EventStream, done: Callable[[], None]) -> None:
        self._inner = inner
        self._done: Callable[[], None] | None = done

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TokenEvent]:
        try:
            async for event in self._inner:
                yield event
        finally:
            self._finish()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._finish()

    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done()
