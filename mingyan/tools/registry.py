"""The tool servers an administrator registered, and the tools a reply may use.

`ToolBox` reads the servers from the store (decrypting their headers), lists tools, and builds a
`ToolSet` for one reply: the enabled servers a user chose, each tool under its own name (a name
two servers share is kept for the first, by server name). A `ToolSet` calls a tool by that name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mingyan.config import Settings
from mingyan.store.tool_servers import ToolServerRow, ToolServerStore
from mingyan.tools import client
from mingyan.tools.secrets import HeaderVault
from mingyan.tools.types import (
    CALL_TIMEOUT_S,
    LIST_TIMEOUT_S,
    MAX_RESULT_CHARS,
    Listing,
    ServerConfig,
    ToolInfo,
    ToolOutcome,
)


@dataclass(frozen=True)
class Limits:
    """The bounds of tool use; the server's settings (`--tool-call-timeout-s`, ...) set them."""

    call_timeout_s: float = CALL_TIMEOUT_S
    list_timeout_s: float = LIST_TIMEOUT_S
    max_result_chars: int = MAX_RESULT_CHARS
    max_steps: int = 4  # model turns in one reply's tool loop (calls happen between them)
    approval_timeout_s: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            call_timeout_s=settings.tool_call_timeout_s,
            list_timeout_s=settings.tool_list_timeout_s,
            max_result_chars=settings.tool_result_chars,
            max_steps=settings.tool_max_steps,
            approval_timeout_s=settings.tool_approval_timeout_s,
        )


@dataclass(frozen=True)
class ToolSet:
    """The tools one reply may call, by the name the model sees."""

    servers: dict[str, ServerConfig]
    tools: dict[str, ToolInfo]
    notices: tuple[str, ...] = ()  # servers that could not be listed: why
    limits: Limits = field(default_factory=Limits)

    def needs_approval(self, name: str) -> bool:
        tool = self.tools.get(name)
        return tool is not None and tool.name in self.servers[tool.server].side_effecting

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        tool = self.tools.get(name)
        if tool is None:
            return ToolOutcome(f"error: there is no tool {name!r}", True, 0, 0, error=f"no tool {name!r}")
        return await client.call_tool(
            self.servers[tool.server],
            tool.name,
            arguments,
            timeout=self.limits.call_timeout_s,
            max_chars=self.limits.max_result_chars,
        )


class ToolBox:
    def __init__(self, store: ToolServerStore, vault: HeaderVault, limits: Limits | None = None) -> None:
        self.store = store
        self.vault = vault
        self.limits = limits or Limits()
        self._known: dict[str, Listing] = {}  # each server's last good listing, by name

    def remember(self, listing: Listing) -> Listing:
        """Keep a good listing: a server down later still offers these tools, and their calls
        come back as error results the model sees (with a notice)."""
        if listing.error is None:
            self._known[listing.server] = listing
        return listing

    def config(self, row: ToolServerRow) -> ServerConfig:
        """Raises ValueError when the headers cannot be decrypted."""
        return ServerConfig(
            name=row.name,
            kind=row.kind,
            command=row.command,
            args=row.args,
            url=row.url,
            headers=self.vault.open(row.headers_secret),
            side_effecting=frozenset(row.side_effecting),
        )

    async def list_server(self, row: ToolServerRow) -> Listing:
        try:
            config = self.config(row)
        except ValueError as exc:
            return Listing(row.name, error=str(exc))
        return self.remember(await client.list_tools(config, self.limits.list_timeout_s))

    async def enabled_names(self) -> list[str]:
        return [row.name for row in await asyncio.to_thread(self.store.list, enabled_only=True)]

    async def toolset(self, names: Sequence[str]) -> ToolSet:
        """The tools of the enabled servers named in `names` (unknown or disabled names: ValueError)."""
        rows = {row.name: row for row in await asyncio.to_thread(self.store.list, enabled_only=True)}
        unknown = [name for name in names if name not in rows]
        if unknown:
            raise ValueError(f"no enabled tool server named {', '.join(map(repr, unknown))}")
        chosen = [rows[name] for name in sorted(set(names))]
        listings = await asyncio.gather(*(self.list_server(row) for row in chosen))
        servers: dict[str, ServerConfig] = {}
        tools: dict[str, ToolInfo] = {}
        notices = []
        for row, listing in zip(chosen, listings, strict=True):
            if listing.error is not None:
                notices.append(f"tool server {row.name}: {listing.error}")
                listing = self._known.get(row.name, listing)
                if listing.error is not None:
                    continue
            servers[row.name] = self.config(row)
            for tool in listing.tools:
                tools.setdefault(tool.name, tool)
        return ToolSet(servers, tools, tuple(notices), self.limits)
