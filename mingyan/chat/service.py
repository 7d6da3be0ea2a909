"""Builds engine requests from chat messages or raw prompts, and collects results.

Everything here works with any `Engine`; nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mingyan.chat.prompt import chat_prompt_tokens
from mingyan.chat.tool_calling import ReplyPlan
from mingyan.engine.base import (
    Engine,
    EventStream,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    Usage,
    check_fits,
)
from mingyan.errors import TemplateError


@dataclass(frozen=True)
class Completed:
    text: str
    finish_reason: FinishReason
    usage: Usage


class ChatService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def model_name(self) -> str:
        return self.engine.info.name

    async def chat_request(
        self, messages: Sequence[Mapping[str, str]], sampling: SamplingParams, *, user: str = ""
    ) -> GenerationRequest:
        """Render `messages` with the model's chat template; check that it fits."""
        return self.request(await self.prompt_tokens(messages), sampling, user=user)

    async def prompt_tokens(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The prompt for `messages`, rendered with the model's chat template (off the event loop)."""
        template = self.engine.chat_template
        if template is None:
            raise TemplateError(
                f"model {self.model_name} has no chat template; use /v1/completions with a raw prompt"
            )
        return await asyncio.to_thread(chat_prompt_tokens, self.engine, template, messages)

    async def shaped_request(
        self, messages: Sequence[Mapping[str, Any]], sampling: SamplingParams, plan: ReplyPlan,
        *, user: str = "",
    ) -> GenerationRequest:
        """Like chat_request, for a reply shaped by `plan`: tools rendered in the family's
        format, tool turns converted, and the plan's constraint and stops applied."""
        if plan.tools is None and plan.constraint is None and all(m.keys() <= {"role", "content"} for m in messages):
            return await self.chat_request(messages, sampling, user=user)  # a plain chat, as before
        template = self._template()
        chat = plan.format.prepare(messages, plan.tools, template.source)
        tools = plan.format.template_tools(template.source, plan.tools)
        tokens = await asyncio.to_thread(chat_prompt_tokens, self.engine, template, chat, tools)
        stops = sampling.stop + tuple(s for s in plan.format.stop if plan.calls_tools and s not in sampling.stop)
        return self.request(tokens, replace(sampling, constraint=plan.constraint, stop=stops), user=user)

    def _template(self):
        template = self.engine.chat_template
        if template is None:
            raise TemplateError(
                f"model {self.model_name} has no chat template; use /v1/completions with a raw prompt"
            )
        return template

    async def text_request(
        self, prompt: str, sampling: SamplingParams, *, user: str = ""
    ) -> GenerationRequest:
        tokens = await asyncio.to_thread(self.engine.tokenize, prompt)
        return self.request(tokens, sampling, user=user)

    def request(self, tokens: list[int], sampling: SamplingParams, *, user: str = "") -> GenerationRequest:
        request = GenerationRequest(prompt_tokens=tuple(tokens), sampling=sampling, user=user)
        check_fits(request, self.engine.info.n_ctx)
        return request

    def stream(self, request: GenerationRequest) -> EventStream:
        return self.engine.generate(request)

    async def complete(self, request: GenerationRequest) -> Completed:
        return await collect(self.engine.generate(request))  # generate raises now if not admitted


async def collect(stream: EventStream) -> Completed:
    """Read a stream to its finish event."""
    parts: list[str] = []
    try:
        async for event in stream:
            parts.append(event.text)
            if event.finish_reason is not None:
                assert event.usage is not None
                return Completed("".join(parts), event.finish_reason, event.usage)
    finally:
        await stream.aclose()
    raise RuntimeError("engine stream ended without a finish event")
