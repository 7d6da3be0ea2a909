"""`mingyan chat`: a streaming terminal chat, in-process or against a running server."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Protocol, TextIO

import httpx

from mingyan.chat.service import ChatService
from mingyan.config import Settings
from mingyan.engine.base import SamplingParams
from mingyan.errors import MingyanError

HELP = "commands: /reset (forget the conversation), /system TEXT (set the system prompt), /exit"


class ChatBackend(Protocol):
    def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]: ...


class LocalBackend:
    def __init__(self, service: ChatService) -> None:
        self.service = service

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        request = await self.service.chat_request(messages, SamplingParams())
        events = self.service.stream(request)
        try:
            async for event in events:
                if event.text:
                    yield event.text
        finally:
            await events.aclose()


class HttpBackend:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.base = url.rstrip("/").removesuffix("/v1") + "/v1"
        self.url = self.base + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def check(self) -> str:
        """Fail early, with one line, when the server is unreachable or refuses us."""
        try:
            response = httpx.get(self.base + "/models", headers=self.headers, timeout=10)
        except httpx.HTTPError as exc:
            raise MingyanError(f"cannot reach {self.base}: {exc}") from exc
        if response.status_code != 200:
            raise MingyanError(f"server answered {response.status_code}: {_error_message(response)}")
        return str(response.json()["data"][0]["id"])

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        body = {"messages": messages, "stream": True}
        timeout = httpx.Timeout(10.0, read=None)
        async with httpx.AsyncClient(timeout=timeout) as client:
            try:
                async with client.stream("POST", self.url, json=body, headers=self.headers) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise MingyanError(f"server answered {response.status_code}: {_error_message(response)}")
                    async for line in response.aiter_lines():
                        if text := _sse_text(line):
                            yield text
            except httpx.HTTPError as exc:
                raise MingyanError(f"cannot reach {self.url}: {exc}") from exc


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _sse_text(line: str) -> str:
    if not line.startswith("data: ") or line == "data: [DONE]":
        return ""
    payload = json.loads(line[6:])
    if "error" in payload:
        raise MingyanError(f"server error: {payload['error'].get('message')}")
    choices = payload.get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


class Conversation:
    def __init__(self, system: str | None) -> None:
        self.system = system
        self.turns: list[dict[str, str]] = []

    def messages(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.turns


def _command(line: str, conversation: Conversation, out: TextIO) -> bool:
    """Handle a /command; return False to leave the chat."""
    name, _, rest = line.partition(" ")
    if name in ("/exit", "/quit"):
        return False
    if name == "/reset":
        conversation.turns.clear()
        print("(conversation cleared)", file=out)
    elif name == "/system":
        conversation.system = rest.strip() or None
        conversation.turns.clear()
        print("(system prompt set; conversation cleared)" if rest.strip() else "(system prompt removed)", file=out)
    else:
        print(HELP, file=out)
    return True


async def _answer(backend: ChatBackend, conversation: Conversation, out: TextIO) -> str:
    parts: list[str] = []
    async for text in backend.stream(conversation.messages()):
        parts.append(text)
        out.write(text)
        out.flush()
    return "".join(parts)


def chat_loop(backend: ChatBackend, conversation: Conversation, *, inp: TextIO = sys.stdin,
              out: TextIO = sys.stdout) -> int:
    loop = asyncio.new_event_loop()
    interactive = inp.isatty()
    print(f"mingyan chat — {HELP}", file=out)
    try:
        while True:
            if interactive:
                out.write("> ")
                out.flush()
            line = inp.readline()
            if not line:
                return 0
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not _command(line, conversation, out):
                    return 0
                continue
            conversation.turns.append({"role": "user", "content": line})
            task = loop.create_task(_answer(backend, conversation, out))
            try:
                reply = loop.run_until_complete(task)
            except KeyboardInterrupt:
                task.cancel()
                loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
                conversation.turns.pop()
                print("\n(stopped; this turn is forgotten)", file=out)
                continue
            except MingyanError as exc:
                conversation.turns.pop()
                print(f"\nerror: {exc}", file=out)
                continue
            print(file=out)
            conversation.turns.append({"role": "assistant", "content": reply})
    finally:
        loop.close()


def run_terminal_chat(settings: Settings, *, url: str | None, api_key: str | None,
                      system: str | None) -> int:
    conversation = Conversation(system)
    if url:
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
        backend = HttpBackend(url, key)
        print(f"connected to {backend.check()} at {backend.base}", file=sys.stderr)
        return chat_loop(backend, conversation)
    from mingyan.runtime import open_engine

    engine = open_engine(settings)
    try:
        return chat_loop(LocalBackend(ChatService(engine)), conversation)
    finally:
        engine.close()
