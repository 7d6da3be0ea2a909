"""`mingyan chat`: a streaming terminal chat, in-process or against a running server.

Against a mingyan server (`--url`) the chat lives in the server's stored conversations (list, resume,
search; see history.py); with `--no-history`, or in-process, the history stays in memory
(session.py). This module reads lines, runs them through the session, and wires it up."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TextIO

from mingyan.config import Settings
from mingyan.errors import MingyanError
from mingyan.terminal.api_client import HistoryApi
from mingyan.terminal.backends import CompletionsBackend, LocalBackend
from mingyan.terminal.history import StoredSession
from mingyan.terminal.session import MemorySession, Session, help_line


@dataclass(frozen=True)
class ChatOptions:
    url: str | None = None
    api_key: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    history: bool = True  # against a server: use its stored conversations (False: --no-history)
    list: bool = False  # print the recent conversations and exit
    search: str | None = None  # print the search results and exit
    resume: str | None = None  # start inside this conversation


def chat_loop(session: Session, runner: asyncio.Runner, *, inp: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """Read lines until /exit or end of input; each message or /command runs to its end (or Ctrl-C)."""
    interactive = inp.isatty()
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
        if not line.startswith("/"):
            _run(runner, session, session.send(line, out), out)
            continue
        name, _, rest = line.partition(" ")
        if name in ("/exit", "/quit"):
            return 0
        command = session.commands.get(name)
        if command is None:
            unknown = "" if name == "/help" else f"unknown command {name}; "
            print(unknown + help_line(session), file=out)
        else:
            _run(runner, session, command.run(rest.strip(), out), out)


def _run(runner: asyncio.Runner, session: Session, step: Coroutine[Any, Any, None], out: TextIO) -> None:
    """Run one step; Ctrl-C cancels it (the session then cleans up), an error is one line."""
    try:
        try:
            runner.run(step)
        except KeyboardInterrupt:
            runner.run(session.interrupted(out))
    except MingyanError as exc:
        print(f"error: {exc}", file=out)
    finally:
        out.flush()  # whoever reads a pipe sees each answer before we wait for the next line


def run_terminal_chat(settings: Settings, options: ChatOptions) -> int:
    _check(options)
    if not options.url:
        return _in_process(settings, options)
    key = options.api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    with asyncio.Runner() as runner:
        if not options.history:
            backend = CompletionsBackend(options.url, key, max_tokens=options.max_tokens)
            print(f"connected to {backend.check()} at {backend.root}", file=sys.stderr)
            return _greet_and_loop(MemorySession(backend, options.system), runner)
        api = HistoryApi(options.url, key)
        try:
            return _with_history(api, options, runner)
        finally:
            runner.run(api.close())


def _check(options: ChatOptions) -> None:
    flags = [
        name
        for name, on in (
            ("--list", options.list),
            ("--search", options.search is not None),
            ("--resume", options.resume is not None),
        )
        if on
    ]
    if flags and not options.url:
        raise MingyanError(f"{' '.join(flags)} needs --url: the conversations are stored by a mingyan server")
    if flags and not options.history:
        raise MingyanError(f"{' '.join(flags)} cannot be used with --no-history")


def _with_history(api: HistoryApi, options: ChatOptions, runner: asyncio.Runner) -> int:
    model = api.check()
    session = StoredSession(api, system=options.system, max_tokens=options.max_tokens)
    if options.list:
        runner.run(session.show_list("", sys.stdout))
        return 0
    if options.search is not None:
        runner.run(session.show_search(options.search.strip(), sys.stdout))
        return 0
    detail = runner.run(session.enter(options.resume.strip())) if options.resume is not None else None
    print(f"connected to {model} at {api.root} (conversations are stored there)", file=sys.stderr)
    if detail is not None:
        _run(runner, session, session.show(detail, sys.stdout), sys.stdout)
    return _greet_and_loop(session, runner)


def _greet_and_loop(session: Session, runner: asyncio.Runner) -> int:
    print(f"mingyan chat — {help_line(session)}", file=sys.stdout)
    return chat_loop(session, runner)


def _in_process(settings: Settings, options: ChatOptions) -> int:
    from mingyan.bootstrap import open_engine
    from mingyan.chat.service import ChatService

    engine = open_engine(settings)
    try:
        backend = LocalBackend(ChatService(engine), max_tokens=options.max_tokens)
        with asyncio.Runner() as runner:
            return _greet_and_loop(MemorySession(backend, options.system), runner)
    finally:
        engine.close()
