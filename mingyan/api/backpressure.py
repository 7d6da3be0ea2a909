"""A streaming client that does not read must not hold memory or work without bound.

`send_bounded` moves a response body to the client through a buffer of at most `limit_bytes`: the
body is read as fast as it comes (so a reply never waits on one client's socket), and the buffer
is sent as fast as the client takes it. When the buffer would pass the limit, the client is cut:
the body is closed (a /v1 stream stops generating; a stored reply goes on and is saved — it runs
server-side), what was buffered is dropped, and `cut_event` (an error event) is offered to the
client for `CUT_GRACE_S`. A client that still does not take it gets its connection closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterable

from starlette.types import Send

log = logging.getLogger(__name__)
CUT_GRACE_S = 5.0


class _Buffer:
    """Chunks waiting for the client; `None` marks the end of the body."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.chunks: deque[bytes | None] = deque()
        self.size = 0
        self.ready = asyncio.Event()

    def put(self, chunk: bytes | None) -> bool:
        """Queue `chunk`; False (and nothing queued) when it would pass the limit."""
        size = len(chunk) if chunk is not None else 0
        if chunk is not None and self.size + size > self.limit_bytes and self.chunks:
            return False
        self.chunks.append(chunk)
        self.size += size
        self.ready.set()
        return True

    async def get(self) -> bytes | None:
        while not self.chunks:
            self.ready.clear()
            await self.ready.wait()
        chunk = self.chunks.popleft()
        self.size -= len(chunk) if chunk is not None else 0
        return chunk


async def send_bounded(
    body: AsyncIterable[str | bytes | memoryview],
    send: Send,
    *,
    limit_bytes: int,
    cut_event: bytes,
    charset: str = "utf-8",
    grace_s: float = CUT_GRACE_S,
) -> bool:
    """Send `body` as response body messages (the response has started). False when the client
    was cut for not reading; then the response is left incomplete unless the cut event got through."""
    buffer = _Buffer(limit_bytes)
    cut = asyncio.Event()
    reader = asyncio.create_task(_read(body, buffer, cut, charset))
    sender = asyncio.create_task(_send_all(buffer, send))
    cutter = asyncio.create_task(cut.wait())
    try:
        while not (cut.is_set() or sender.done()):
            await asyncio.wait({sender, cutter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done() and (failure := reader.exception()) is not None:
                raise failure  # the body failed: as if it had been sent directly
        if not cut.is_set():
            sender.result()
            return True
        sender.cancel()  # blocked on a full socket: that chunk never went out
        await asyncio.gather(sender, return_exceptions=True)
        log.warning("a streaming client did not read while %d bytes queued for it: stream cut", limit_bytes)
        try:
            async with asyncio.timeout(grace_s):
                await send({"type": "http.response.body", "body": cut_event, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            pass  # the server closes the connection (the response is incomplete)
        return False
    finally:
        for task in (reader, sender, cutter):
            task.cancel()
        await asyncio.gather(reader, sender, cutter, return_exceptions=True)


async def _read(
    body: AsyncIterable[str | bytes | memoryview], buffer: _Buffer, cut: asyncio.Event, charset: str
) -> None:
    async for chunk in body:
        data = chunk.encode(charset) if isinstance(chunk, str) else bytes(chunk)
        if not buffer.put(data):
            cut.set()
            buffer.chunks.clear()
            await body.aclose()  # type: ignore[attr-defined]  # an async generator
            return
    buffer.put(None)


async def _send_all(buffer: _Buffer, send: Send) -> None:
    while (chunk := await buffer.get()) is not None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
