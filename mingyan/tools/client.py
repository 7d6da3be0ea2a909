"""Talking to one MCP server with the official SDK: list its tools, call one.

Every operation opens its own connection (a stdio child is started and stopped; an HTTP session
is opened and closed), bounded by a timeout, so a hung or crashed server costs one call, never
the next. Failures of any kind come back as values (a `Listing` with `error`, a `ToolOutcome`
with `is_error`), never as exceptions: the caller is a chat reply that must go on.

A stdio child gets a minimal environment: the SDK's safe set (HOME, LOGNAME, PATH, SHELL, TERM,
USER) plus `LANG`; nothing else of the server's own environment (no MINGYAN_* settings, no
database URL, no keys).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mingyan.tools.types import (
    CALL_TIMEOUT_S,
    LIST_TIMEOUT_S,
    MAX_RESULT_CHARS,
    Listing,
    ServerConfig,
    ToolInfo,
    ToolOutcome,
)

log = logging.getLogger(__name__)

CHILD_ENV = {"LANG": "C.UTF-8"}  # added to the SDK's safe set; never the server's own environment


@asynccontextmanager
async def connect(server: ServerConfig, timeout: float) -> AsyncIterator[Client]:
    """An initialized session with `server` (the caller bounds the whole use with a timeout)."""
    if server.kind == "stdio":
        if not server.command:
            raise ValueError("a stdio tool server needs a command")
        params = StdioServerParameters(command=server.command, args=list(server.args), env=dict(CHILD_ENV))
        async with Client(params, cache=None, read_timeout_seconds=timeout) as client:
            yield client
        return
    if not server.url:
        raise ValueError("an HTTP tool server needs a URL")
    http = httpx2.AsyncClient(headers=dict(server.headers), timeout=httpx2.Timeout(timeout))
    async with http:
        transport = streamable_http_client(server.url, http_client=http)
        async with Client(transport, cache=None, read_timeout_seconds=timeout) as client:
            yield client


async def list_tools(server: ServerConfig, timeout: float = LIST_TIMEOUT_S) -> Listing:
    try:
        async with asyncio.timeout(timeout):
            async with connect(server, timeout) as client:
                result = await client.list_tools()
    except Exception as exc:
        return Listing(server.name, error=describe(exc, timeout))
    tools = tuple(
        ToolInfo(server.name, tool.name, tool.description or "", dict(tool.input_schema or {"type": "object"}))
        for tool in result.tools
    )
    return Listing(server.name, tools)


async def call_tool(
    server: ServerConfig,
    name: str,
    arguments: dict[str, Any],
    *,
    timeout: float = CALL_TIMEOUT_S,
    max_chars: int = MAX_RESULT_CHARS,
) -> ToolOutcome:
    """Call `name`; the result as text, cut to `max_chars`. Never raises (but for cancellation)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            async with connect(server, timeout) as client:
                result = await client.call_tool(name, arguments)
    except Exception as exc:
        message = describe(exc, timeout)
        return ToolOutcome(f"error: {message}", True, _ms(started), 0, error=message)
    text = result_text(result)
    cut = text[:max_chars]
    error = cut if result.is_error else None
    return ToolOutcome(cut, bool(result.is_error), _ms(started), len(text), len(text) > max_chars, error)


def result_text(result: Any) -> str:
    """A CallToolResult as text: its text parts joined, else its structured content as JSON."""
    parts = [getattr(c, "text", None) for c in result.content or ()]
    texts = [p for p in parts if isinstance(p, str)]
    if texts:
        return "\n".join(texts)
    if result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(f"[{getattr(c, 'type', 'content')}]" for c in result.content or ())


def describe(exc: BaseException, timeout: float) -> str:
    """One readable line for a failure (the innermost cause of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return f"the tool server did not answer within {timeout:g} s"
    if isinstance(exc, httpx2.ConnectError | ConnectionError | FileNotFoundError):
        return f"the tool server cannot be reached ({type(exc).__name__}: {exc})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
