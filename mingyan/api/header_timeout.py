"""A deadline for reading a request's line and headers, which uvicorn does not have.

uvicorn closes idle keep-alive connections, but a client that sends a request line and then one
header byte every few seconds holds its connection (and a file descriptor) forever: a few hundred
such clients exhaust the server. `with_header_timeout` makes a subclass of one of uvicorn's HTTP
protocol classes that closes a connection whose headers are not complete within the deadline,
counted from the moment the connection opens, and again from the end of each response (the next
request on a kept-alive connection). The body and the response are not timed here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class HeaderTimeout:
    """Mixin over uvicorn's H11Protocol / HttpToolsProtocol: both set `self.cycle` when a
    request's headers are complete, and call `on_response_complete` when its answer is sent."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._timed_cycle: Any = None
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)  # type: ignore[misc]
        self._start_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._check_headers_read()

    def on_response_complete(self) -> None:
        self._start_header_timer()  # for the next request on this connection
        super().on_response_complete()  # type: ignore[misc]
        self._check_headers_read()  # (a pipelined request may have been read just now)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _check_headers_read(self) -> None:
        transport = self.transport  # type: ignore[attr-defined]
        cycle = self.cycle  # type: ignore[attr-defined]
        if transport.get_protocol() is not self:  # upgraded (websocket): no longer HTTP/1
            self._stop_header_timer()
        elif cycle is not None and cycle is not self._timed_cycle:
            self._timed_cycle = cycle  # a new request's headers are in
            self._stop_header_timer()

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        if not self.transport.is_closing():  # type: ignore[attr-defined]
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        transport = self.transport  # type: ignore[attr-defined]
        if not transport.is_closing():
            log.debug("closing a connection whose request headers took over %s s", self.header_timeout_s)
            transport.close()


def with_header_timeout(protocol: type[asyncio.Protocol], seconds: float) -> type[asyncio.Protocol]:
    """`protocol` (one of uvicorn's HTTP/1 protocol classes) with a `seconds` header deadline."""
    return type(f"{protocol.__name__}WithHeaderTimeout", (HeaderTimeout, protocol), {"header_timeout_s": seconds})
