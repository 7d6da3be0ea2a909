"""Server-sent events for streaming completions, and disconnect-aware waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

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
    runs its own cleanup)."""

    def __init__(self, body: AsyncIterator[str], *, on_close: Callable[[], Awaitable[None]] | None, **kwargs) -> None:
        super().__init__(body, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._on_close is not None:
                await self._on_close()


def sse_response(
    body: AsyncIterator[str], on_close: Callable[[], Awaitable[None]] | None = None
) -> StreamingResponse:
    return ClosingStreamingResponse(
        body,
        on_close=on_close,
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
