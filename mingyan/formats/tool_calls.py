"""The OpenAI side of tool calling as plain data: tool specs, the caller's choice, calls.

Nothing here knows a model family; `mingyan.formats.tool_formats` turns these into each
family's own prompt text and grammar, and its replies back into `ToolCall`s.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

ChoiceMode = Literal["none", "auto", "required", "named"]


def new_call_id() -> str:
    """An id in OpenAI's shape (`call_` + 24 characters)."""
    return "call_" + secrets.token_hex(12)


@dataclass(frozen=True)
class ToolSpec:
    """One function the model may call. `parameters` is its JSON schema (an object schema)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def openai(self) -> dict[str, Any]:
        """The tool as OpenAI (and Hugging Face chat templates) spell it."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class ToolChoice:
    mode: ChoiceMode = "auto"
    name: str | None = None  # the one function to call when mode is "named"


@dataclass(frozen=True)
class ToolRequest:
    """What the caller asked for: the tools, which may or must be called, how many at once."""

    tools: tuple[ToolSpec, ...]
    choice: ToolChoice = ToolChoice()
    parallel: bool = True

    @property
    def callable_tools(self) -> tuple[ToolSpec, ...]:
        """The tools a reply may call under the choice."""
        if self.choice.mode == "none":
            return ()
        if self.choice.mode == "named":
            return tuple(t for t in self.tools if t.name == self.choice.name)
        return self.tools


@dataclass(frozen=True)
class ToolCall:
    """A call the model made: `arguments` is the JSON text of its arguments object."""

    id: str
    name: str
    arguments: str

    def arguments_object(self) -> Any:
        return json.loads(self.arguments)


@dataclass(frozen=True)
class ParsedReply:
    """A reply split into its text and its tool calls (content None when it has no text)."""

    content: str | None
    calls: tuple[ToolCall, ...] = ()
