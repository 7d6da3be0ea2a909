"""The terminal chat inside conversations stored by a mingyan server: send, stop, list, resume, search.

The server keeps the history and assembles each reply's context; this session only remembers which
conversation it is in, and the conversations the last /list or /search numbered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TextIO

from mingyan.errors import MingyanError
from mingyan.terminal.api_client import HistoryApi
from mingyan.terminal.format import (
    UNTITLED,
    conversation_row,
    last_turns,
    message_line,
    omitted_note,
    one_line,
    path_messages,
    reply_ending,
    search_row,
)
from mingyan.terminal.session import Command, ReplyPrinter

RESUME_TURNS = 3


class StoredSession:
    def __init__(self, api: HistoryApi, *, system: str | None, max_tokens: int | None = None) -> None:
        self.api = api
        self.system = system
        self.settings = {"max_tokens": max_tokens} if max_tokens is not None else None
        self.conversation_id: str | None = None  # None: the next message starts a new conversation
        self.next_title = ""  # for the conversation the next message starts
        self.numbered: list[str] = []  # conversation ids of the last /list or /search, from 1
        self.replying = False  # a reply is on screen (Ctrl-C must stop it)
        self.live: str | None = None  # the id of that reply, once known
        self.commands = {
            "/list": Command("/list", self.show_list),
            "/search": Command("/search TEXT", self.show_search),
            "/resume": Command("/resume N|ID", self.resume),
            "/new": Command("/new", self.new),
            "/title": Command("/title TEXT", self.rename),
            "/system": Command("/system TEXT", self.set_system),
            "/reset": Command("/reset", self.new),
        }

    # ---- messages and replies ---------------------------------------------------------------

    async def send(self, text: str, out: TextIO) -> None:
        if self.conversation_id is None:
            created = await self.api.create(system_prompt=self.system, title=self.next_title)
            self.conversation_id, self.next_title = created["id"], ""
        await self._show_reply(self.api.send(self.conversation_id, text, self.settings), out)

    async def _show_reply(self, events: AsyncIterator[dict[str, Any]], out: TextIO, live: str | None = None) -> None:
        """Print a reply as it streams, then one line if it did not complete or context was dropped."""
        printer = ReplyPrinter(out)
        self.replying, self.live = True, live
        omitted, done, final = 0, False, None
        try:
            async for event in events:
                kind = event.get("type")
                if kind == "start":
                    self.live = event["message"]["id"]
                    omitted = event.get("omitted_turns") or 0
                elif kind in ("snapshot", "delta"):
                    printer.write(event.get("text") or "")
                elif kind == "done":
                    done, final = True, event.get("message")
        except MingyanError:
            self.replying, self.live = False, None  # nothing left to stop
            raise
        finally:
            printer.end_line()
        self.replying, self.live = False, None
        if not done:
            raise MingyanError("the server closed the stream before the reply ended; /resume shows what was saved")
        for note in (reply_ending(final), omitted_note(omitted)):
            if note:
                print(note, file=out)

    async def interrupted(self, out: TextIO) -> None:
        if not self.replying or self.conversation_id is None:
            print("(cancelled)", file=out)
            return
        ids = [self.live] if self.live else (await self.api.conversation(self.conversation_id))["live"]
        self.replying, self.live = False, None
        statuses = [(await self.api.stop(self.conversation_id, i))["status"] for i in ids]
        if "stopped" in statuses:
            print("(stopped; the partial reply is kept in the conversation)", file=out)
        else:
            print("(stopped)", file=out)

    # ---- commands ------------------------------------------------------------------------

    async def show_list(self, _: str, out: TextIO) -> None:
        conversations = await self.api.conversations()
        self.numbered = [c["id"] for c in conversations]
        if not conversations:
            print("(no conversations yet)", file=out)
        for number, conversation in enumerate(conversations, 1):
            print(conversation_row(number, conversation), file=out)

    async def show_search(self, query: str, out: TextIO) -> None:
        if not query:
            raise MingyanError("usage: /search TEXT")
        hits = await self.api.search(query)
        self.numbered = [h["conversation_id"] for h in hits]
        if not hits:
            print(f"(nothing found for {query!r})", file=out)
        for number, hit in enumerate(hits, 1):
            print(search_row(number, hit), file=out)

    async def resume(self, which: str, out: TextIO) -> None:
        await self.show(await self.enter(which), out)

    async def enter(self, which: str) -> dict[str, Any]:
        """Switch to conversation `which` (a number from the last /list or /search, or an id)."""
        detail = await self.api.conversation(self._conversation_id(which))
        self.conversation_id, self.next_title = detail["id"], ""
        return detail

    async def show(self, detail: dict[str, Any], out: TextIO) -> None:
        """A conversation's last turns, then the rest of a reply still being generated."""
        live = detail.get("live") or []
        path = path_messages(detail)
        shown = last_turns([m for m in path if m["id"] not in live], RESUME_TURNS)
        turns = sum(m["role"] == "user" for m in path)
        title = one_line(detail.get("title") or "") or UNTITLED
        last = f"; the last {RESUME_TURNS}" if turns > RESUME_TURNS else ""
        print(f"(resumed {title}: {turns} turn{'s' if turns != 1 else ''}{last})", file=out)
        for message in shown:
            print(message_line(message), file=out)
        if live:
            out.write("assistant: ")
            await self._show_reply(self.api.attach(detail["id"], live[0]), out, live=live[0])

    def _conversation_id(self, which: str) -> str:
        if not which:
            raise MingyanError("usage: /resume N|ID (N: a number from the last /list or /search)")
        if which.isdigit() and len(which) < 6:
            number = int(which)
            if not self.numbered:
                raise MingyanError(f"no conversation number {number}: run /list or /search first")
            if not 1 <= number <= len(self.numbered):
                raise MingyanError(f"no conversation number {number} (the last list had {len(self.numbered)})")
            return self.numbered[number - 1]
        return which

    async def new(self, _: str, out: TextIO) -> None:
        stored = "; the previous one stays stored (/list)" if self.conversation_id else ""
        self.conversation_id = None
        print(f"(your next message starts a new conversation{stored})", file=out)

    async def rename(self, title: str, out: TextIO) -> None:
        if not title:
            raise MingyanError("usage: /title TEXT")
        if self.conversation_id is None:
            self.next_title = title
            print(f"(the new conversation will be titled {title})", file=out)
            return
        renamed = await self.api.rename(self.conversation_id, title)
        print(f"(renamed: {renamed['title']})", file=out)

    async def set_system(self, text: str, out: TextIO) -> None:
        self.system = text or None
        stored = "; the previous one stays stored (/list)" if self.conversation_id else ""
        self.conversation_id = None
        what = "system prompt set" if text else "system prompt removed"
        print(f"({what}; your next message starts a new conversation{stored})", file=out)
