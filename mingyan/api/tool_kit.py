"""The tool kit of a running server: the registered MCP servers under the configured limits, and
approvals whose timeouts go to the audit log (explicit decisions are audited by the approval route)."""

from __future__ import annotations

import asyncio
from typing import Any

from mingyan.chat.tool_loop import ToolKit
from mingyan.config import Settings
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.types import User
from mingyan.store.db import Database
from mingyan.store.errors import NotFound
from mingyan.store.tool_servers import ToolServerStore
from mingyan.tools.approvals import Approvals, Record
from mingyan.tools.registry import Limits, ToolBox
from mingyan.tools.secrets import HeaderVault

TIMEOUT_EVENT = "tool_call_approval_timeout"


def tool_kit(settings: Settings, db: Database, accounts: AccountStore | None) -> ToolKit:
    box = ToolBox(ToolServerStore(db), HeaderVault(settings.data_dir), Limits.from_settings(settings))
    return ToolKit(box, Approvals(timeout_recorder(accounts) if accounts is not None else None))


def timeout_recorder(accounts: AccountStore) -> Record:
    """Writes an approval that timed out to the audit log, in the name of the call's owner."""

    async def record(owner: str, message_id: str, details: dict[str, Any]) -> None:
        def write() -> None:
            try:
                actor: User | str = accounts.users.get_user(owner)
            except NotFound:  # the operator's local identity has no account
                actor = owner
            accounts.ledger.audit(TIMEOUT_EVENT, actor=actor, target=message_id, **details)

        await asyncio.to_thread(write)

    return record
