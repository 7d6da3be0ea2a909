"""What the tools package hands around: a server's connection settings, a tool, a call's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_RESULT_CHARS = 16_000  # a tool result longer than this is cut (the model's context is small)
CALL_TIMEOUT_S = 30.0
LIST_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ServerConfig:
    """How to reach one MCP server. `headers` are decrypted: never log or return them."""

    name: str
    kind: str  # stdio or http
    command: str | None = None
    args: tuple[str, ...] = ()
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    side_effecting: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ToolInfo:
    server: str
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    """A call's result as the model sees it: `text` (the result, or a readable error)."""

    text: str
    is_error: bool
    duration_ms: int
    size: int  # characters of the whole result, before any cut
    truncated: bool = False
    error: str | None = None  # why the call failed (timeout, server down, the tool's own error)


@dataclass(frozen=True)
class Listing:
    """A server's tools, or why they could not be listed."""

    server: str
    tools: tuple[ToolInfo, ...] = ()
    error: str | None = None
