"""/v1 under `tool_choice: "auto"`: a reply that only repeats calls already answered is replaced.

A call identical (same name, same arguments as JSON values) to one the conversation already made
and holds a result for can never be useful: the client would run it and send the same result
back, and a small model would repeat it again. That loop is what the default 0.5B model falls
into after a tool result (docs/tools.md). So when every call of a reply is such a repeat, the
reply is dropped and the turn generated again from the same prompt with calls not allowed (only
the `auto` grammar's prose branch), which is what the model answers with instead. The
conversation's rendering is untouched (the family's own template); only decoding differs.

While a reply could still be such a repeat, its events are held back; prose, or a call that is
not a repeat, is released as it comes (calls open an `auto` reply, so this is decided early).
The usage of both generations is reported and metered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from mingyan.chat.service import ChatService
from mingyan.chat.tool_calling import ReplyPlan, finish
from mingyan.engine.base import EventStream, FinishReason, SamplingParams, TokenEvent, Usage
from mingyan.formats.grammar import Constraint

# The `auto` grammar's prose branch alone (formats/envelope.py): text that does not open like a call.
PROSE = Constraint("root ::= [^{\\[(`<\"'\\x00-\\x20] [^\\x00]*\n")

Call = tuple[str, str]  # (name, arguments as canonical JSON)


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return arguments


def answered_calls(messages: Sequence[Mapping[str, Any]]) -> frozenset[Call]:
    """The calls of the conversation that a `tool` message answers."""
    answered = {m.get("tool_call_id") for m in messages if m["role"] == "tool"}
    return frozenset(
        (c["function"]["name"], _canonical(c["function"]["arguments"]))
        for m in messages
        if m["role"] == "assistant"
        for c in m.get("tool_calls") or []
        if c.get("id") in answered
    )


def guarded(plan: ReplyPlan, messages: Sequence[Mapping[str, Any]]) -> frozenset[Call]:
    """The calls a reply under `plan` may not merely repeat (empty: no guard needed)."""
    if plan.tools is None or plan.tools.choice.mode != "auto" or not plan.calls_tools:
        return frozenset()
    return answered_calls(messages)


def only_repeats(plan: ReplyPlan, text: str, answered: frozenset[Call]) -> bool:
    calls = finish(plan, text).calls
    return bool(calls) and all((c.name, _canonical(c.arguments)) in answered for c in calls)


def prose_plan(plan: ReplyPlan) -> ReplyPlan:
    return replace(plan, constraint=PROSE)


class RepeatGuard:
    """An EventStream: `first`'s events, or, when they only repeat answered calls, `again()`'s."""

    def __init__(
        self,
        first: EventStream,
        plan: ReplyPlan,
        answered: frozenset[Call],
        again: Callable[[], Awaitable[EventStream]],
    ) -> None:
        self._current, self._plan, self._answered, self._again = first, plan, answered, again

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TokenEvent]:
        held: list[TokenEvent] = []
        text, released = "", False
        async for event in self._current:
            if released:
                yield event
                continue
            held.append(event)
            text += event.text
            final = event.finish_reason is not None
            if final and event.finish_reason == FinishReason.STOP and only_repeats(self._plan, text, self._answered):
                async for again in self._second(event.usage):
                    yield again
                return
            if final or self._cannot_repeat(text):
                released = True
                for kept in held:
                    yield kept
                held = []

    def _cannot_repeat(self, text: str) -> bool:
        """Prose has started, or a call whose name no answered call has."""
        parsed = self._plan.format.parse(text, final=False)
        if parsed.content and not parsed.calls:
            return True
        names = {name for name, _ in self._answered}
        return any(c.name is not None and c.name not in names for c in parsed.calls)

    async def _second(self, spent: Usage | None) -> AsyncIterator[TokenEvent]:
        await self._current.aclose()
        self._current = await self._again()
        async for event in self._current:
            if event.usage is not None and spent is not None:
                total = Usage(
                    spent.prompt_tokens + event.usage.prompt_tokens,
                    spent.completion_tokens + event.usage.completion_tokens,
                    spent.cached_tokens + event.usage.cached_tokens,
                )
                event = replace(event, usage=total)
            yield event

    async def aclose(self) -> None:
        await self._current.aclose()


def repeat_guard(
    chat: ChatService, messages: Sequence[Mapping[str, Any]], sampling: SamplingParams, plan: ReplyPlan, **options: Any
) -> Callable[[EventStream], EventStream] | None:
    """What wraps the engine stream of a /v1 reply under `plan` (None: nothing to guard).
    `options`: the chat_request options of the first generation, used again for the second."""
    answered = guarded(plan, messages)
    if not answered:
        return None

    async def again() -> EventStream:
        request = await chat.chat_request(messages, sampling, plan=prose_plan(plan), **options)
        return chat.stream(request)

    return lambda first: RepeatGuard(first, plan, answered, again)
