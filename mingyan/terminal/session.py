"""What a terminal chat session is to the loop, and the session that keeps its history in memory.

The loop (terminal.py) reads lines; a session answers them: `send` a message, run a `/command`, or
clean up after Ctrl-C (`interrupted`). `MemorySession` keeps the turns in this process and gets its
replies from a `ChatBackend` (the in-process engine, or any OpenAI-compatible server)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from mingyan.terminal.backends import ChatBackend


@dataclass(frozen=True)
class Command:
    usage: str  # as /help shows it: `/search TEXT`
    run: Callable[[str, TextIO], Coroutine[Any, Any, None]]  # (the text after the command, output)


class Session(Protocol):
    @property
    def commands(self) -> Mapping[str, Command]: ...  # read-only: a session's own dict fits

    async def send(self, text: str, out: TextIO) -> None: ...

    async def interrupted(self, out: TextIO) -> None:
        """Ctrl-C cancelled `send` or a command: say what happened (and stop the reply if need be)."""
        ...


def help_line(session: Session) -> str:
    return "commands: " + ", ".join([c.usage for c in session.commands.values()] + ["/help", "/exit"])


class ReplyPrinter:
    """Streams reply text to the terminal and remembers whether the cursor is mid-line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.open = False

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.open = not text.endswith("\n")

    def end_line(self) -> None:
        if self.open:
            self.out.write("\n")
            self.out.flush()
            self.open = False


class MemorySession:
    """History in this process: the system prompt and the turns so far, sent whole with every message."""

    def __init__(self, backend: ChatBackend, system: str | None) -> None:
        self.backend = backend
        self.system = system
        self.turns: list[dict[str, str]] = []
        self.printer: ReplyPrinter | None = None
        self.commands = {
            "/reset": Command("/reset", self.reset),
            "/system": Command("/system TEXT", self.set_system),
        }

    def messages(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.turns

    async def send(self, text: str, out: TextIO) -> None:
        self.printer = ReplyPrinter(out)
        self.turns.append({"role": "user", "content": text})
        parts: list[str] = []
        try:
            async for piece in self.backend.stream(self.messages()):
                parts.append(piece)
                self.printer.write(piece)
        except BaseException:
            self.turns.pop()  # an error or Ctrl-C: this turn is forgotten
            self.printer.end_line()
            raise
        self.printer.end_line()
        self.turns.append({"role": "assistant", "content": "".join(parts)})

    async def interrupted(self, out: TextIO) -> None:
        print("(stopped; this turn is forgotten)", file=out)

    async def reset(self, _: str, out: TextIO) -> None:
        self.turns.clear()
        print("(conversation cleared)", file=out)

    async def set_system(self, text: str, out: TextIO) -> None:
        self.system = text or None
        self.turns.clear()
        print("(system prompt set; conversation cleared)" if text else "(system prompt removed)", file=out)
