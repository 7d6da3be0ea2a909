"""Which MCP tool servers a stored conversation's reply uses (docs/tools.md).

A message request's `tools` (an empty list too) is the choice for its reply, and becomes the
conversation's stored choice (`settings.tools`), so that the switch stays as the user left it after
a reload and on other devices. A request without `tools` uses the stored choice: the servers in it
that are still enabled (one an administrator disabled or removed since is left out, not refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mingyan.chat.tool_loop import ToolKit


async def reply_tools(
    kit: ToolKit | None, settings: Mapping[str, Any] | None, asked: Sequence[str] | None
) -> list[str]:
    """The servers the reply uses: `asked` (checked later, when they are listed), else the stored ones
    that are enabled now."""
    if asked is not None:
        return list(asked)
    stored = (settings or {}).get("tools") or []
    if not stored or kit is None:
        return []
    enabled = set(await kit.box.enabled_names())
    return [name for name in stored if name in enabled]


def stored_choice(settings: Mapping[str, Any] | None, asked: Sequence[str] | None) -> dict[str, Any] | None:
    """The conversation's settings with `asked` stored as its choice; None when nothing changes."""
    if asked is None:
        return None
    names = sorted(set(asked))
    if names == sorted((settings or {}).get("tools") or []):
        return None
    changed = {key: value for key, value in (settings or {}).items() if key != "tools"}
    if names:
        changed["tools"] = names
    return changed
