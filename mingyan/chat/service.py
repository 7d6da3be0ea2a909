"""Builds engine requests from chat messages or raw prompts, and collects results.

Everything here works with any `Engine`; nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mingyan.chat.prompt import chat_prompt_tokens
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
        self, messages: Sequence[Mapping[str, str]], sampling: SamplingParams, *, user: str = "",
        scope: str = "",
    ) -> GenerationRequest:
        """Render `messages` with the model's chat template; check that it fits."""
        return self.request(await self.prompt_tokens(messages), sampling, user=user, scope=scope)

    async def prompt_tokens(self, messages: Sequence[Mapping[str, str]]) -> list[int]:
        """The prompt for `messages`, rendered with the model's chat template (off the event loop)."""
        template = self.engine.chat_template
        if template is None:
            raise TemplateError(
                f"model {self.model_name} has no chat template; use /v1/completions with a raw prompt"
            )
        return await asyncio.to_thread(chat_prompt_tokens, self.engine, template, messages)

    async def text_request(
        self, prompt: str, sampling: SamplingParams, *, user: str = "", scope: str = ""
    ) -> GenerationRequest:
        tokens = await asyncio.to_thread(self.engine.tokenize, prompt)
        return self.request(tokens, sampling, user=user, scope=scope)

    def request(
        self, tokens: list[int], sampling: SamplingParams, *, user: str = "", scope: str = "", label: str = "",
    ) -> GenerationRequest:
        """`scope`: the owner whose cached KV state the request may reuse; `label`: its conversation."""
        request = GenerationRequest(
            prompt_tokens=tuple(tokens), sampling=sampling, user=user, cache_scope=scope, cache_label=label,
        )
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
