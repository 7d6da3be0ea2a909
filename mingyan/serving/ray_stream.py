"""The API side of one request sent to a Ray replica: its events as an EventStream.

The replica's streaming generator yields lists of items (TokenEvents, or a WireError); this turns
them back into TokenEvents and raised errors. A Ray failure while reading (the replica's process
or node died) ends the stream with `EngineLost`, so the chat layer saves the reply as
`interrupted` with its text so far. Closing the stream early — even before reading it — asks the
replica to cancel the request.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from mingyan.engine.base import FinishReason, RequestTiming, TokenEvent
from mingyan.errors import EngineError
from mingyan.serving.ray_replica import WireError

Observer = Callable[[RequestTiming], None]


class RayStream:
    """Events of request `request_id` on a replica (see the module doc).

    `lost(exc)` turns a Ray failure into the error the stream raises (and takes the replica out of
    rotation when it is dead); `ended(finished)` runs once when the stream ends or is closed.
    """

    def __init__(
        self,
        generator: Any,  # ray.ObjectRefGenerator
        *,
        model: str,
        lost: Callable[[Exception], Exception],
        ended: Callable[[bool], None],
        observer: Observer | None = None,
    ) -> None:
        self._generator = generator
        self._model = model
        self._lost = lost
        self._ended: Callable[[bool], None] | None = ended
        self._observer = observer
        self._started = time.monotonic()
        self._first: float | None = None

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TokenEvent]:
        finished = False
        try:
            async for items in self._batches():
                for item in items:
                    if isinstance(item, WireError):
                        raise item.error()
                    if item.text and self._first is None:
                        self._first = time.monotonic()
                    yield item
                    if item.finish_reason is not None:
                        finished = True
                        self._observe(item)
                        return
            raise EngineError(f"a replica of model {self._model} ended a reply without finishing it")
        finally:
            self._end(finished)

    async def _batches(self) -> AsyncIterator[list[Any]]:
        from ray.exceptions import RayError

        try:
            async for ref in self._generator:
                yield await ref
        except RayError as exc:
            raise self._lost(exc) from None

    async def aclose(self) -> None:
        self._end(False)

    def _end(self, finished: bool) -> None:
        ended, self._ended = self._ended, None
        if ended is not None:
            ended(finished)

    def _observe(self, event: TokenEvent) -> None:
        if self._observer is None or event.usage is None or event.finish_reason is FinishReason.CANCELLED:
            return
        now = time.monotonic()
        first = self._first
        n = event.usage.completion_tokens
        self._observer(
            RequestTiming(
                model=self._model,
                finish_reason=event.finish_reason or FinishReason.STOP,
                queued_s=0.0,  # the replica's queue is not seen from here: its wait is part of ttft
                ttft_s=first - self._started if first is not None else None,
                tpot_s=(now - first) / (n - 1) if first is not None and n > 1 else None,
                usage=event.usage,
            )
        )
