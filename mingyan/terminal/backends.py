"""Where the in-memory terminal chat gets its replies: the engine in this process, or /v1/chat/completions.

Both stream the text of one reply to a list of messages; the history lives in the terminal session.
The HTTP helpers here (root URL, one-line errors) serve the stored-history client too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Protocol

import httpx

from mingyan.chat.service import ChatService
from mingyan.engine.base import SamplingParams
from mingyan.errors import MingyanError

CONNECT_TIMEOUT_S = 10.0


class ChatBackend(Protocol):
    def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]: ...


def server_root(url: str) -> str:
    """`http://host:8000/v1/` → `http://host:8000`: users paste either."""
    return url.rstrip("/").removesuffix("/v1")


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def error_message(response: httpx.Response) -> str:
    """The server's OpenAI-style `error.message`, else the start of its body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200].strip() or f"HTTP {response.status_code}"


def check_server(root: str, headers: dict[str, str]) -> str:
    """The served model's name; one line (MingyanError) when the server is unreachable or refuses us."""
    try:
        response = httpx.get(root + "/v1/models", headers=headers, timeout=CONNECT_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise MingyanError(f"cannot reach {root}/v1: {exc}") from exc
    if response.status_code != 200:
        raise MingyanError(f"server answered {response.status_code}: {error_message(response)}")
    try:
        return str(response.json()["data"][0]["id"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise MingyanError(f"{root}/v1/models did not list a model") from exc


class LocalBackend:
    """The engine in this process."""

    def __init__(self, service: ChatService, *, max_tokens: int | None = None) -> None:
        self.service = service
        self.sampling = SamplingParams(max_tokens=max_tokens)

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        request = await self.service.chat_request(messages, self.sampling)
        events = self.service.stream(request)
        try:
            async for event in events:
                if event.text:
                    yield event.text
        finally:
            await events.aclose()


class CompletionsBackend:
    """Any OpenAI-compatible server's /v1/chat/completions; the client sends the whole history each turn."""

    def __init__(self, url: str, api_key: str | None, *, max_tokens: int | None = None) -> None:
        self.root = server_root(url)
        self.url = self.root + "/v1/chat/completions"
        self.headers = auth_headers(api_key)
        self.max_tokens = max_tokens

    def check(self) -> str:
        return check_server(self.root, self.headers)

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        body: dict = {"messages": messages, "stream": True}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=None)
        async with httpx.AsyncClient(timeout=timeout) as client:
            try:
                async with client.stream("POST", self.url, json=body, headers=self.headers) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise MingyanError(f"server answered {response.status_code}: {error_message(response)}")
                    async for line in response.aiter_lines():
                        if text := _completion_text(line):
                            yield text
            except httpx.HTTPError as exc:
                raise MingyanError(f"cannot reach {self.url}: {exc}") from exc


def _completion_text(line: str) -> str:
    if not line.startswith("data: ") or line == "data: [DONE]":
        return ""
    payload = json.loads(line[6:])
    if "error" in payload:
        raise MingyanError(f"server error: {payload['error'].get('message')}")
    choices = payload.get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""
