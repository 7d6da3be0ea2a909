"""A small async client for a mingyan server's stored conversations (/api): the terminal chat's backend.

Every failure becomes a MingyanError carrying one readable line (the server's `error.message`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from mingyan.errors import MingyanError
from mingyan.terminal.backends import (
    CONNECT_TIMEOUT_S,
    auth_headers,
    check_server,
    error_message,
    server_root,
)

Json = dict[str, Any]
LIST_LIMIT = 20


class HistoryApi:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.root = server_root(url)
        self.headers = auth_headers(api_key)
        self.client = httpx.AsyncClient(
            base_url=self.root + "/api",
            headers=self.headers,
            timeout=httpx.Timeout(CONNECT_TIMEOUT_S, read=None),
        )

    async def close(self) -> None:
        await self.client.aclose()

    def check(self) -> str:
        """The served model's name; refuses, in one line, a server that does not store conversations."""
        model = check_server(self.root, self.headers)
        try:
            response = httpx.get(
                self.root + "/api/conversations", params={"limit": 1}, headers=self.headers, timeout=CONNECT_TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            raise MingyanError(f"cannot reach {self.root}/api: {exc}") from exc
        if response.status_code == 404:
            raise MingyanError(
                f"{self.root} does not store conversations (not a mingyan server?); "
                "use --no-history to keep the history in this terminal"
            )
        _raise_for(response)
        return model

    # ---- conversations ---------------------------------------------------------------------

    async def conversations(self, limit: int = LIST_LIMIT) -> list[Json]:
        return (await self._call("GET", "/conversations", params={"limit": limit}))["data"]

    async def conversation(self, conversation_id: str) -> Json:
        return await self._call("GET", f"/conversations/{conversation_id}")

    async def create(self, *, system_prompt: str | None, title: str = "") -> Json:
        body: Json = {"title": title}
        if system_prompt:
            body["system_prompt"] = system_prompt
        return await self._call("POST", "/conversations", json=body)

    async def rename(self, conversation_id: str, title: str) -> Json:
        return await self._call("PATCH", f"/conversations/{conversation_id}", json={"title": title})

    async def search(self, query: str, limit: int = LIST_LIMIT) -> list[Json]:
        return (await self._call("GET", "/search", params={"q": query, "limit": limit}))["data"]

    # ---- replies ---------------------------------------------------------------------------

    def send(self, conversation_id: str, content: str, settings: Json | None = None) -> AsyncIterator[Json]:
        """SSE events of a new message's reply: `start`, `snapshot`, `delta`..., `done`."""
        body: Json = {"content": content, "stream": True}
        if settings:
            body["settings"] = settings
        return self._events("POST", f"/conversations/{conversation_id}/messages", json=body)

    def attach(self, conversation_id: str, message_id: str) -> AsyncIterator[Json]:
        """SSE events of a reply already running (or finished): `snapshot`, `delta`..., `done`."""
        return self._events("GET", f"/conversations/{conversation_id}/messages/{message_id}/events")

    async def stop(self, conversation_id: str, message_id: str) -> Json:
        return await self._call("POST", f"/conversations/{conversation_id}/messages/{message_id}/stop")

    # ---- plumbing --------------------------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> Json:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MingyanError(f"cannot reach {self.root}/api: {exc}") from exc
        _raise_for(response)
        return response.json()

    async def _events(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[Json]:
        try:
            async with self.client.stream(method, path, **kwargs) as response:
                if response.status_code != 200:
                    await response.aread()
                    _raise_for(response)
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        yield json.loads(line[6:])
        except httpx.HTTPError as exc:
            raise MingyanError(f"lost the connection to {self.root}: {exc}") from exc


def _raise_for(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise MingyanError(error_message(response))
