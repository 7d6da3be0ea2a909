"""Replies with tool calls and structured output: the plan, the final parse, the stream.

`ReplyPlan` says how a reply is shaped: which tool format (the model family's), which tools,
and the constraint that forces the shape. `finish` turns a whole reply into content and
calls; `CallStream` turns a streamed reply into OpenAI-shaped deltas (a call's index, id and
name first, then argument fragments) that add up to exactly what `finish` returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from mingyan.errors import InvalidRequestError
from mingyan.formats.envelope import PartialCall, PartialReply
from mingyan.formats.grammar import Constraint, SchemaError, json_object_grammar, schema_grammar
from mingyan.formats.tool_calls import ParsedReply, ToolCall, ToolRequest, new_call_id
from mingyan.formats.tool_formats import ToolFormat, tool_format


def response_constraint(kind: str, schema: dict[str, Any] | None) -> Constraint | None:
    """The grammar for OpenAI's `response_format` (`text`: none)."""
    if kind == "json_object":
        return Constraint(json_object_grammar())
    if kind == "json_schema":
        try:
            return Constraint(
                schema_grammar(schema if schema is not None else {}, "response_format.json_schema.schema")
            )
        except SchemaError as exc:
            raise InvalidRequestError(str(exc), param="response_format.json_schema.schema") from exc
    return None


@dataclass(frozen=True)
class ReplyPlan:
    format: ToolFormat
    tools: ToolRequest | None = None  # None: no tool may be called (none offered, or choice none)
    constraint: Constraint | None = None

    @property
    def calls_tools(self) -> bool:
        return self.tools is not None and bool(self.tools.callable_tools)

    def is_plain(self, messages: Sequence[Mapping[str, Any]]) -> bool:
        """Nothing to shape: no tools, no constraint, and plain role/content messages."""
        return self.tools is None and self.constraint is None and all(m.keys() <= {"role", "content"} for m in messages)


def plan_reply(family: str | None, tools: ToolRequest | None, response: Constraint | None) -> ReplyPlan:
    fmt = tool_format(family)
    if tools is None or not tools.callable_tools:
        return ReplyPlan(fmt, None, response)
    if response is not None:
        raise InvalidRequestError(
            "response_format json_object/json_schema cannot be combined with callable tools; "
            "use tool_choice 'none' or drop response_format",
            param="response_format",
        )
    return ReplyPlan(fmt, tools, fmt.constraint(tools))


def finish(plan: ReplyPlan, text: str) -> ParsedReply:
    """The whole reply as content and calls (calls only when tools could be called).

    A call to a tool that was not offered, or with arguments that do not validate against its
    schema (possible only when a reply was cut short), leaves the whole reply as text."""
    if not plan.calls_tools:
        return ParsedReply(text)
    parsed = plan.format.parse(text, final=True)
    tools = {t.name: t for t in plan.tools.callable_tools} if plan.tools else {}
    if not all(c.name in tools and _valid(c.arguments, tools[c.name].parameters) for c in parsed.calls):
        return ParsedReply(text.strip())
    calls = tuple(ToolCall(new_call_id(), c.name or "", c.arguments) for c in parsed.calls)
    return ParsedReply((parsed.content or None) if calls else parsed.content, calls)


def _valid(arguments: str, schema: dict[str, Any]) -> bool:
    """Arguments that are a JSON object valid against the tool's schema (the grammar makes
    them so; this guards replies cut short or calls in text the grammar did not cover)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return False
    return isinstance(value, dict) and jsonschema.Draft202012Validator(schema).is_valid(value)


@dataclass(frozen=True)
class CallDelta:
    """One piece of a streamed call: `id` and `name` come once, first; then `arguments` pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class CallStream:
    """Feeds streamed text through the family's parser; yields content and call deltas."""

    plan: ReplyPlan
    text: str = ""
    sent_content: str = ""
    sent_args: list[str] = field(default_factory=list)

    def feed(self, piece: str, *, final: bool = False) -> tuple[str, list[CallDelta]]:
        """Content to send now (may be "") and call deltas, after `piece` arrived."""
        self.text += piece
        parsed = self.plan.format.parse(self.text, final=final)
        if final:
            done = finish(self.plan, self.text)
            parsed = PartialReply(done.content or "", [_as_partial(c) for c in done.calls])
        content = _growth(self.sent_content, parsed.content)
        self.sent_content += content
        deltas: list[CallDelta] = []
        for index, call in enumerate(parsed.calls):
            if call.name is None:
                break
            if index == len(self.sent_args):
                deltas.append(CallDelta(index, new_call_id(), call.name))
                self.sent_args.append("")
            more = _growth(self.sent_args[index], call.arguments)
            if more:
                deltas.append(CallDelta(index, arguments=more))
                self.sent_args[index] += more
        return content, deltas

    @property
    def made_calls(self) -> bool:
        return bool(self.sent_args)


def _as_partial(call: ToolCall) -> PartialCall:
    return PartialCall(call.name, call.arguments, True)


def _growth(sent: str, now: str) -> str:
    """What `now` adds to `sent` (the parsers only ever extend what they returned)."""
    return now[len(sent) :] if now.startswith(sent) else ""
