"""The tool servers a conversation stores in its settings (`settings.tools`): a choice made in the
conversation's create or update names enabled servers only; a name the conversation already had
stays accepted after an administrator disabled its server (it is not used while disabled)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from mingyan.api.context import context
from mingyan.errors import InvalidRequestError


def checked_settings(
    request: Request, values: dict[str, Any], owner: str | None = None, conversation_id: str | None = None
) -> dict[str, Any]:
    """`values` (a conversation's new settings) when its `tools` are allowed; else a 400 naming them.
    With `conversation_id`: the names the owner's conversation stores now are allowed too."""
    names = values.get("tools") or []
    if not names:
        values.pop("tools", None)  # none switched on: the same as no choice
        return values
    kit = context(request).tools
    enabled = {row.name for row in kit.box.store.list(enabled_only=True)} if kit is not None else set()
    kept: set[str] = set()
    if owner is not None and conversation_id is not None:
        stored = context(request).history().get_conversation(owner, conversation_id).settings or {}
        kept = set(stored.get("tools") or [])
    unknown = [name for name in names if name not in enabled and name not in kept]
    if unknown:
        raise InvalidRequestError(
            f"no enabled tool server named {', '.join(map(repr, unknown))}", param="settings.tools"
        )
    return values
