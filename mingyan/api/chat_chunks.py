"""Chat completion bodies for shaped replies (tool calls, structured output): serialization only.

The parsing and the streaming state live in `mingyan.chat.tool_calling`; this module turns
their results into OpenAI's response and chunk shapes.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from mingyan.api.logprobs import chat_logprobs
from mingyan.api.schemas import (
    AssistantMessage,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatDelta,
    FunctionCallOut,
    FunctionDelta,
    ToolCallDelta,
    ToolCallOut,
)
from mingyan.api.streaming import usage_info
from mingyan.chat.tool_calling import CallStream, ReplyPlan, finish
from mingyan.engine.base import FinishReason, TokenEvent


def reply_message(plan: ReplyPlan, text: str, reason: FinishReason) -> tuple[AssistantMessage, str]:
    """The assistant message and finish_reason for a whole reply."""
    reply = finish(plan, text)
    calls = [ToolCallOut(id=c.id, function=FunctionCallOut(name=c.name, arguments=c.arguments)) for c in reply.calls]
    message = AssistantMessage(content=reply.content, tool_calls=calls or None)
    return message, "tool_calls" if calls else reason.value


def chunk_maker(
    plan: ReplyPlan, cid: str, created: int, model: str, include_usage: bool, *, logprobs: bool = False
) -> Callable[[TokenEvent], list[BaseModel]]:
    """A function from engine events to chunks: content and tool-call deltas, the finish
    chunk (finish_reason `tool_calls` when calls were made), and usage if asked for. With
    `logprobs`, an event's token log-probabilities ride on the first chunk made from it."""
    stream = CallStream(plan)

    def chunk(delta: ChatDelta, reason: str | None = None, event: TokenEvent | None = None) -> ChatCompletionChunk:
        lp = chat_logprobs(event.logprobs) if logprobs and event is not None and event.logprobs else None
        choice = ChatChunkChoice(delta=delta, finish_reason=reason, logprobs=lp)
        return ChatCompletionChunk(id=cid, created=created, model=model, choices=[choice])

    def make(event: TokenEvent) -> list[BaseModel]:
        final = event.finish_reason is not None
        content, deltas = stream.feed(event.text, final=final) if plan.calls_tools else (event.text, [])
        out: list[BaseModel] = []
        if content:
            out.append(chunk(ChatDelta(content=content), event=event))
        for d in deltas:
            call = ToolCallDelta(
                index=d.index,
                id=d.id,
                type="function" if d.id else None,
                function=FunctionDelta(name=d.name, arguments=d.arguments if d.id is None else ""),
            )
            out.append(chunk(ChatDelta(tool_calls=[call]), event=None if out else event))
        if event.finish_reason is not None:
            reason = "tool_calls" if stream.made_calls else event.finish_reason.value
            out.append(chunk(ChatDelta(), reason))
            if include_usage and event.usage is not None:
                out.append(
                    ChatCompletionChunk(id=cid, created=created, model=model, choices=[], usage=usage_info(event.usage))
                )
        return out

    return make
