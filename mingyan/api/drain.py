"""Draining before shutdown: stop admitting, let running replies finish, then stop.

`Drain` is the app's drain state. Once `begin()` is called (the server got SIGTERM), `DrainGate`
answers every new request with 503 and a Retry-After (except /health, which says `draining`), and
`run()` waits until nothing runs any more — no request in flight, no live reply, the engine idle —
or until the drain timeout; then the app's `stop_work` ends what is left (live replies saved
`interrupted` with their text, streams ended with an error, KV states written).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from mingyan.api.errors import error_body

POLL_S = 0.1
UNGATED = frozenset({"/health", "/metrics"})  # what a load balancer or monitor reads while we drain


class Drain:
    """The drain state of one app, and the requests in flight (counted by `DrainGate`)."""

    def __init__(self, timeout_s: float, idle: Callable[[], bool], stop_work: Callable[[], Awaitable[None]]) -> None:
        self.timeout_s = timeout_s
        self._idle = idle  # True when no reply runs outside an HTTP request (live replies, engine)
        self._stop_work = stop_work
        self.in_flight = 0
        self.started: float | None = None  # monotonic time of begin()
        self.expired = False  # the timeout passed with work still running

    @property
    def draining(self) -> bool:
        return self.started is not None

    def begin(self) -> None:
        if self.started is None:
            self.started = time.monotonic()

    def idle(self) -> bool:
        return self.in_flight == 0 and self._idle()

    def retry_after_s(self) -> int:
        """When a refused client should try again: after the rest of the drain and a restart."""
        left = self.timeout_s if self.started is None else self.timeout_s - (time.monotonic() - self.started)
        return max(1, math.ceil(left) + 5)

    async def run(self) -> bool:
        """Begin draining; return once everything finished (True) or the timeout passed and what
        still ran has been stopped (False)."""
        self.begin()
        assert self.started is not None
        deadline = self.started + self.timeout_s
        while not self.idle() and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
        self.expired = not self.idle()
        await self._stop_work()
        return not self.expired


class DrainGate:
    """ASGI middleware: counts requests in flight; while draining, refuses new ones with 503."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNGATED:
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            await self._refuse(send)
            return
        self.drain.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.in_flight -= 1

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                503,
                "The server is shutting down and accepts no new requests; retry shortly.",
                code="server_shutting_down",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.drain.retry_after_s()).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
