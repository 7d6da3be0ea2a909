"""ToolServerStore: the MCP servers an administrator registered.

The store keeps what it is given: the auth headers arrive already encrypted (`headers_secret`,
see mingyan.tools.secrets) and leave only through `ToolServerRow.headers_secret`, which the API
never serializes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mingyan.store import tables as t
from mingyan.store.db import Database
from mingyan.store.errors import Conflict, NotFound
from mingyan.store.tables import utcnow

KINDS = ("stdio", "http")


@dataclass(frozen=True)
class ToolServerRow:
    id: str
    name: str
    kind: str
    command: str | None
    args: tuple[str, ...]
    url: str | None
    headers_secret: str | None
    enabled: bool
    side_effecting: tuple[str, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def has_headers(self) -> bool:
        return bool(self.headers_secret)


def _row(server: t.ToolServer) -> ToolServerRow:
    return ToolServerRow(
        id=server.id,
        name=server.name,
        kind=server.kind,
        command=server.command,
        args=tuple(server.args or ()),
        url=server.url,
        headers_secret=server.headers_secret,
        enabled=server.enabled,
        side_effecting=tuple(server.side_effecting or ()),
        created_at=server.created_at,
        updated_at=server.updated_at,
    )


class ToolServerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        name: str,
        kind: str,
        *,
        command: str | None = None,
        args: Sequence[str] = (),
        url: str | None = None,
        headers_secret: str | None = None,
        enabled: bool = True,
        side_effecting: Sequence[str] = (),
    ) -> ToolServerRow:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        now = utcnow()
        server = t.ToolServer(
            name=name,
            kind=kind,
            command=command,
            args=list(args),
            url=url,
            headers_secret=headers_secret,
            enabled=enabled,
            side_effecting=list(side_effecting),
            created_at=now,
            updated_at=now,
        )
        try:
            with self.db.sessions.begin() as session:
                session.add(server)
                session.flush()
                return _row(server)
        except IntegrityError as exc:
            raise Conflict(f"A tool server named {name!r} exists already.", code="name_taken") from exc

    def get(self, server_id: str) -> ToolServerRow:
        with self.db.reads() as session:
            server = session.get(t.ToolServer, server_id)
            if server is None:
                raise NotFound(f"No tool server {server_id}.")
            return _row(server)

    def list(self, *, enabled_only: bool = False) -> list[ToolServerRow]:
        query = select(t.ToolServer).order_by(t.ToolServer.name)
        if enabled_only:
            query = query.where(t.ToolServer.enabled.is_(True))
        with self.db.reads() as session:
            return [_row(s) for s in session.scalars(query)]

    def update(self, server_id: str, **values: Any) -> ToolServerRow:
        """Change `enabled` and/or `side_effecting`."""
        unknown = set(values) - {"enabled", "side_effecting"}
        if unknown:
            raise TypeError(f"cannot change {', '.join(sorted(unknown))}")
        with self.db.sessions.begin() as session:
            server = session.get(t.ToolServer, server_id)
            if server is None:
                raise NotFound(f"No tool server {server_id}.")
            if "enabled" in values:
                server.enabled = bool(values["enabled"])
            if "side_effecting" in values:
                server.side_effecting = list(values["side_effecting"])
            server.updated_at = utcnow()
            session.flush()
            return _row(server)

    def remove(self, server_id: str) -> ToolServerRow:
        with self.db.sessions.begin() as session:
            server = session.get(t.ToolServer, server_id)
            if server is None:
                raise NotFound(f"No tool server {server_id}.")
            row = _row(server)
            session.delete(server)
        return row
