"""Server-sent events for streaming completions, and disconnect-aware waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Send

from mingyan.api.backpressure import send_bounded
from mingyan.api.context import context
from mingyan.api.errors import error_body
from mingyan.api.schemas import PromptTokensDetails, UsageInfo
from mingyan.engine.base import EventStream, TokenEvent, Usage
from mingyan.errors import MingyanError

T = TypeVar("T")
DISCONNECT_POLL_S = 0.1


def usage_info(usage: Usage) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached_tokens),
    )


def sse(payload: BaseModel | dict) -> str:
    if isinstance(payload, BaseModel):
        data = payload.model_dump_json(exclude_none=False)
    else:
        data = json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


ChunkMaker = Callable[[TokenEvent], list[BaseModel]]


async def sse_events(
    events: EventStream, make_chunks: ChunkMaker, first: BaseModel | None = None
) -> AsyncIterator[str]:
    """Format an engine stream as SSE; an engine failure becomes an error event."""
    try:
        if first is not None:
            yield sse(first)
        async for event in events:
            for chunk in make_chunks(event):
                yield sse(chunk)
    except MingyanError as exc:
        yield sse(error_body(500, str(exc)))
    finally:
        await events.aclose()  # cancels generation if the client went away
    yield "data: [DONE]\n\n"


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its source when it ends, however it ends: a client that
    goes away before the first byte leaves a body iterator that never started (and so never
    runs its own cleanup). At most `buffer_bytes` wait for a client that does not read; then it
    is cut with `cut_event` (api/backpressure.py)."""

    def __init__(
        self,
        body: AsyncIterator[str],
        *,
        on_close: Callable[[], Awaitable[None]] | None,
        buffer_bytes: int,
        cut_event: str,
        **kwargs,
    ) -> None:
        super().__init__(body, **kwargs)
        self._on_close = on_close
        self._buffer_bytes = buffer_bytes
        self._cut_event = cut_event.encode()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send_bounded(self.body_iterator, send, limit_bytes=self._buffer_bytes, cut_event=self._cut_event)

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                await self._on_close()


def cut_event(stored: bool) -> str:
    """The last event of a stream cut for not being read: an /api reply goes on and is saved."""
    if stored:
        message = (
            "The stream was cut because the client did not read it; the reply goes on and is saved: "
            "attach again (GET .../events) or read the conversation."
        )
        return sse({"type": "error", **error_body(408, message, code="client_too_slow")})
    message = "The stream was cut because the client did not read it; generation stopped."
    return sse(error_body(408, message, code="client_too_slow")) + "data: [DONE]\n\n"


def buffer_bytes(request: Request) -> int:
    """How much a streaming client may leave unread (--stream-buffer-kb)."""
    return context(request).settings.stream_buffer_kb * 1024


def sse_response(
    body: AsyncIterator[str],
    on_close: Callable[[], Awaitable[None]] | None = None,
    *,
    buffer_bytes: int,
    stored: bool = False,
) -> StreamingResponse:
    """SSE from `body`. A client that leaves `buffer_bytes` unread gets `cut_event(stored)` and is cut."""
    return ClosingStreamingResponse(
        body,
        on_close=on_close,
        buffer_bytes=buffer_bytes,
        cut_event=cut_event(stored),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def unless_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`, cancelling it if the client disconnects first (non-streaming requests)."""
    task = asyncio.ensure_future(work())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                raise asyncio.CancelledError("client disconnected")
    finally:
        if not task.done():
            task.cancel()
