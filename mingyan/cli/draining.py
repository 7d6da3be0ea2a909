"""uvicorn's Server, except that SIGTERM drains first (see api/drain.py) and then exits 0."""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType

import uvicorn

from mingyan.api.drain import Drain


class DrainingServer(uvicorn.Server):
    """On SIGTERM: refuse new requests, wait for running ones (up to the drain timeout), stop what
    is left, then shut down as uvicorn does. A second SIGTERM, or Ctrl+C, stops at once."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._loop is not None and not self.drain.draining and not self.should_exit:
            self.drain.begin()  # refuse new requests from now on
            self._loop.call_soon_threadsafe(self._start_drain)
            return  # not recorded: a drained server exits 0 instead of re-raising SIGTERM
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        print(f"mingyan: SIGTERM: draining (up to {self.drain.timeout_s:g} s)", file=sys.stderr, flush=True)
        self._drain_task = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        finished = await self.drain.run()
        print(
            "mingyan: drained" if finished else "mingyan: drain timeout: stopped the replies still running",
            file=sys.stderr,
            flush=True,
        )
        self.should_exit = True
