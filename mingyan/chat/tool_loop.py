"""The tool loop of a stored conversation's reply: model → tool calls → MCP → results → model.

One `ToolLoopReply` is one live reply (durable, re-attachable, stoppable) that may span several
messages of the conversation tree: an assistant message whose `tool` field holds its calls, one
`tool` message per call (its result and provenance: server, tool, arguments, duration, result
size, error, approval), then the next assistant message, up to `Limits.max_steps` model turns
(the last one is offered no tools, so it answers in words). Each message is saved as it ends; a
crash leaves the steps so far stored and the open message `interrupted` at the next start.

The model side is issue 12's machinery (the family's tool format, the grammar, `finish`). Once a
step's results are in, the next model turn is the answer turn of `mingyan.chat.tool_answer`: the
results restated in the user's turn with an instruction to answer from them (small models ignore
them in their template's tool-result turn), and only the tools this reply has not called yet
offered (a repeated call is the loop small models fall into). Results are data: text in a result
is never parsed for calls, approvals or settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mingyan.chat.live import DATABASE_AWAY, LiveReply, ReplyEvent, _finish_reason, _usage_fields
from mingyan.chat.service import ChatService
from mingyan.chat.tool_answer import answer_messages, called_tools
from mingyan.chat.tool_calling import ReplyPlan, finish, plan_reply
from mingyan.engine.base import EventStream, FinishReason, SamplingParams, TokenEvent, Usage
from mingyan.errors import InvalidRequestError, MingyanError
from mingyan.formats.tool_calls import ToolCall, ToolRequest, ToolSpec
from mingyan.store.conversations import ConversationStore
from mingyan.store.errors import NotFound
from mingyan.store.tables import Message
from mingyan.tools.approvals import Approvals, PendingCall
from mingyan.tools.registry import ToolBox, ToolSet
from mingyan.tools.schema import grammar_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolKit:
    """What the conversation service needs for tool loops: the registered servers and approvals."""

    box: ToolBox
    approvals: Approvals = field(default_factory=Approvals)


def history_messages(system_prompt: str | None, history: Sequence[Message]) -> list[dict[str, Any]]:
    """A stored path as OpenAI-shaped messages (assistant `tool_calls`, `tool` results)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for m in history:
        if m.role == "system":
            continue
        calls = (m.tool or {}).get("calls") if m.role == "assistant" else None
        if calls:
            out.append(
                {"role": "assistant", "content": m.content or None, "tool_calls": [_openai_call(c) for c in calls]}
            )
        elif m.role == "tool":
            out.append({"role": "tool", "tool_call_id": (m.tool or {}).get("call_id", ""), "content": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def plain_turns(history: Sequence[Message]) -> list[dict[str, str]]:
    """A path for a reply without tools: tool results and call-only messages left out."""
    return [
        {"role": m.role, "content": m.content}
        for m in history
        if m.role in ("user", "assistant") and not (m.tool and not m.content)
    ]


def _openai_call(call: dict[str, Any]) -> dict[str, Any]:
    return {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}


def tool_request(toolset: ToolSet, leave_out: frozenset[str] = frozenset()) -> ToolRequest:
    specs = tuple(
        ToolSpec(name, tool.description, grammar_schema(tool.input_schema))
        for name, tool in toolset.tools.items()
        if name not in leave_out
    )
    return ToolRequest(specs)


@dataclass
class LoopSetup:
    """Everything a tool loop needs after its first request was admitted."""

    chat: ChatService
    family: str | None
    toolset: ToolSet
    approvals: Approvals
    messages: list[dict[str, Any]]  # the prompt so far (grows with each step)
    sampling: SamplingParams
    options: dict[str, Any]  # user, scope, label for each step's request
    track: Callable[[str], None] = lambda _id: None  # the hub learns each new message id

    def plan(self, step: int) -> ReplyPlan:
        """The tools this reply has not called yet, while steps remain; the last step (or one with
        no tool left) answers in words."""
        request = tool_request(self.toolset, called_tools(self.messages))
        last = step >= self.toolset.limits.max_steps or not request.tools
        return plan_reply(self.family, None if last else request, None)

    def prompt(self) -> list[dict[str, Any]]:
        """The messages the model sees: after results, this reply's calls and results restated."""
        return answer_messages(self.messages)


async def first_request(
    chat: ChatService,
    kit: ToolKit,
    names: Sequence[str],
    system_prompt: str | None,
    history: Sequence[Message],
    user_text: str | None,
    sampling: SamplingParams,
    **options: Any,
) -> tuple[LoopSetup, Any]:
    """The loop's setup and its first generation request (raises before anything is written)."""
    try:
        toolset = await kit.box.toolset(names)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), param="tools") from exc
    messages = history_messages(system_prompt, history)
    if user_text is not None:
        messages.append({"role": "user", "content": user_text})
    setup = LoopSetup(chat, chat.engine.info.family, toolset, kit.approvals, messages, sampling, options)
    request = await chat.chat_request(setup.prompt(), sampling, plan=setup.plan(1), **options)
    return setup, request


@dataclass
class _Step:
    finish: TokenEvent | None = None
    started: float = field(default_factory=time.monotonic)
    first_token_s: float | None = None


class ToolLoopReply(LiveReply):
    """A live reply that runs the tool loop; see the module docstring."""

    def __init__(self, store: ConversationStore, owner: str, message: Message, setup: LoopSetup, **kw: Any) -> None:
        super().__init__(store, owner, message, **kw)
        self.setup = setup
        self._step = _Step()
        self._open_tool: Message | None = None  # a tool message whose call is running
        self._spent = Usage(0, 0, 0)
        self._step_no = 1
        self._closed: Message | None = None  # the current message, when already saved (calls made)

    async def events(self) -> AsyncIterator[ReplyEvent]:
        """As LiveReply's, with the current message on the snapshot (the loop's newest message)."""
        async for event in super().events():
            if event.type == "snapshot":
                yield ReplyEvent("snapshot", text=event.text, message=self.message)
                for notice in self.setup.toolset.notices:  # servers that could not be listed
                    yield ReplyEvent("notice", text=notice)
                continue
            yield event

    async def _run(self, stream: EventStream) -> Message | None:
        status, error = "complete", None
        try:
            while True:
                plan = self.setup.plan(self._step_no)
                await self._generate(stream)
                calls = finish(plan, self.text).calls if self._completed() else ()
                if not calls:
                    break
                stream = await self._tool_step(plan, calls)
        except asyncio.CancelledError:
            status = self._stop_status or "stopped"
        except MingyanError as exc:
            status, error = "error", str(exc)
        except Exception as exc:  # the reply must still be closed and saved
            log.exception("tool loop %s failed", self.id)
            status, error = "error", f"internal error: {type(exc).__name__}"
        if self._step.finish is None and status == "complete":
            status, error = "error", "the engine stream ended without finishing"
        return await self._close(status, error)

    def _completed(self) -> bool:
        event = self._step.finish
        return event is not None and event.finish_reason == FinishReason.STOP

    async def _generate(self, stream: EventStream) -> None:
        """One model turn into the current message (its text saved as it grows)."""
        self._step = _Step()
        saver = asyncio.create_task(self._save_periodically())
        try:
            async for event in stream:
                if event.text:
                    if self._step.first_token_s is None:
                        self._step.first_token_s = time.monotonic() - self._step.started
                    self._parts.append(event.text)
                    self._publish(ReplyEvent("delta", text=event.text))
                if event.finish_reason is not None:
                    self._step.finish = event
        finally:
            saver.cancel()
            await stream.aclose()

    def _count(self) -> None:
        event = self._step.finish
        used = event.usage if event is not None and event.usage is not None else None
        if used is None:
            used = Usage(self.prompt_tokens if not self._spent.prompt_tokens else 0, len(self._parts))
        self._spent = Usage(
            self._spent.prompt_tokens + used.prompt_tokens,
            self._spent.completion_tokens + used.completion_tokens,
            self._spent.cached_tokens + used.cached_tokens,
        )

    def _timing(self) -> dict[str, Any]:
        return _usage_fields(self._step.finish, self._step.first_token_s, time.monotonic() - self._step.started)

    async def _tool_step(self, plan: ReplyPlan, calls: tuple[ToolCall, ...]) -> EventStream:
        """Save the calls, run them, start the next assistant message; its stream."""
        self._count()
        tools = self.setup.toolset.tools
        record = [{"id": c.id, "name": c.name, "server": tools[c.name].server, "arguments": c.arguments} for c in calls]
        content = finish(plan, self.text).content or ""
        saved = await self._save_final(
            "complete", "tool_calls", content=content, tool={"calls": record}, **self._timing()
        )
        self._closed = self.message = saved  # a re-attach's snapshot shows the saved calls
        self._publish(ReplyEvent("tool_call", message=saved))
        self.setup.messages.append(
            {"role": "assistant", "content": content or None, "tool_calls": [_openai_call(c) for c in record]}
        )
        parent = saved.id
        for call in record:
            result = await self._run_call(parent, call)
            parent = result.id
            self.setup.messages.append({"role": "tool", "tool_call_id": call["id"], "content": result.content})
        return await self._next_message(parent)

    async def _run_call(self, parent_id: str, call: dict[str, Any]) -> Message:
        toolset = self.setup.toolset
        provenance: dict[str, Any] = {
            "call_id": call["id"],
            "server": call["server"],
            "tool": toolset.tools[call["name"]].name,
            "arguments": call["arguments"],
            "approval": "pending" if toolset.needs_approval(call["name"]) else None,
        }
        message = await self._store(
            self.store.add_message, self.owner, self.message.conversation_id, "tool", "", parent_id,
            status="streaming", tool=provenance,
        )  # fmt: skip
        self._open_tool = message
        self._publish(ReplyEvent("tool_pending" if provenance["approval"] else "tool_running", message=message))
        if provenance["approval"]:
            pending = PendingCall.of(message.conversation_id, provenance)
            decision = await self.setup.approvals.wait(
                self.owner, message.id, toolset.limits.approval_timeout_s, pending
            )
            provenance["approval"] = decision
        if provenance["approval"] in (None, "approved"):
            outcome = await toolset.call(call["name"], json.loads(call["arguments"]))
            text, extra = (
                outcome.text,
                {
                    "duration_ms": outcome.duration_ms,
                    "result_size": outcome.size,
                    "truncated": outcome.truncated,
                    "error": outcome.error,
                },
            )
        else:
            reason = "timed out" if provenance["approval"] == "timeout" else "was denied"
            text, extra = f"error: the user's approval of this call {reason}; it did not run", {"error": reason}
        done = await self._store(
            self.store.finish_message, self.owner, message.id, "complete", None, content=text,
            tool={**provenance, **extra},
        )  # fmt: skip
        self._open_tool = None
        self._publish(ReplyEvent("tool_result", message=done))
        return done

    async def _next_message(self, parent_id: str) -> EventStream:
        info = self.setup.chat.engine.info
        nxt = await self._store(
            self.store.start_assistant_message, self.owner, self.message.conversation_id, parent_id,
            model_name=info.name, model_sha256=info.sha256, sampling=self.message.sampling, seed=self.message.seed,
        )  # fmt: skip
        self.message, self._parts, self._saved_len, self._closed, self._step = nxt, [], 0, None, _Step()
        self._step_no += 1
        self.setup.track(nxt.id)
        self._publish(ReplyEvent("step", message=nxt))
        step_plan = self.setup.plan(self._step_no)
        request = await self.setup.chat.chat_request(
            self.setup.prompt(), self.setup.sampling, plan=step_plan, **self.setup.options
        )
        return self.setup.chat.stream(request)

    async def _close(self, status: str, error: str | None) -> Message | None:
        """Save the open messages with the final status, publish `done`, tell the meter."""
        if self._open_tool is not None:
            await self._quietly(self.store.finish_message, self.owner, self._open_tool.id, status, None)
        if self._closed is None:
            self._count()
        try:
            self.final = self._closed or await self._save_final(
                status, _finish_reason(self._step.finish, status), content=self.text, error=error, **self._timing()
            )
        except NotFound:
            log.info("tool loop %s: its conversation was deleted while it ran", self.id)
        except DATABASE_AWAY:
            log.error("tool loop %s: the database stayed away; the next start marks it interrupted", self.id)
        self.usage = self._spent
        self._publish(ReplyEvent("done", message=self.final))
        for callback in self._finish_callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("tool loop %s: finish callback failed", self.id)
        return self.final

    async def _store(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)

    async def _quietly(self, function: Any, *args: Any) -> None:
        try:
            await self._store(function, *args)
        except Exception:
            log.warning("tool loop %s: could not close a tool message", self.id)
