"""Builds engine requests from chat messages or raw prompts, and collects results.

Everything here works with any `Engine`; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from mingyan.chat.prompt import chat_prompt_tokens
from mingyan.chat.prompt_workers import PromptWorkers
from mingyan.chat.tool_calling import ReplyPlan
from mingyan.engine.base import (
    Engine,
    EventStream,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    TokenLogprob,
    Usage,
    check_fits,
    check_logit_bias,
)
from mingyan.errors import InvalidRequestError, TemplateError
from mingyan.formats.template import ChatTemplate
from mingyan.safety.gate import Safety
from mingyan.safety.judge import Judge
from mingyan.safety.labels import ai_label


@dataclass(frozen=True)
class Completed:
    text: str
    finish_reason: FinishReason
    usage: Usage
    logprobs: tuple[TokenLogprob, ...] = ()


MAX_MESSAGES = 1000  # per request: more is refused before any work
CHARS_PER_TOKEN_LIMIT = 16  # a prompt longer than this many characters per context token cannot fit
MIN_PROMPT_CHARS = 16384


class ChatService:
    def __init__(
        self,
        engine: Engine,
        workers: PromptWorkers | None = None,
        *,
        safety: Safety | None = None,
        system_prompt: str = "",
    ) -> None:
        self.engine = engine
        self.workers = workers or PromptWorkers()
        self.safety = safety  # the content policy: prompts screened, replies guarded (None: no moderation)
        self.system_prompt = system_prompt  # the deployment's default system message ("": none)

    def sibling(self, engine: Engine) -> ChatService:
        """A chat service for another model, sharing this one's workers, policy and system message."""
        return ChatService(engine, workers=self.workers, safety=self.safety, system_prompt=self.system_prompt)

    def with_system(self, messages: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
        """`messages`, led by the default system message when they bring none of their own."""
        if not self.system_prompt or any(m.get("role") == "system" for m in messages):
            return messages
        return [{"role": "system", "content": self.system_prompt}, *messages]

    def screen(self, texts: Sequence[str], *, owner: str = "", param: str = "messages", stage: str = "input") -> None:
        """Refuse a prompt the content policy blocks (ContentFiltered: 400 `content_filter`), before
        any work; matches of `log` categories are counted and audited."""
        if self.safety is not None:
            self.safety.screen(texts, owner=owner, param=param, stage=stage)

    async def check_prompt(self, texts: Sequence[str], *, owner: str = "", param: str = "messages") -> None:
        """`screen`, then (when the deployment turned them on) the trained classifier and the model
        judge on what the keywords let through: this service's model classifies the prompt (safety/judge.py)."""
        self.screen(texts, owner=owner, param=param)
        if self.safety is not None:
            await self.safety.classify_prompt(texts, owner=owner, param=param)  # the trained classifier
        if self.safety is not None and self.safety.judging:
            judge = Judge(self.engine, partial(self.prompt_tokens, user=owner), self.safety.moderator.policy.checked)
            await self.safety.judge_prompt(judge, texts, owner=owner, param=param)

    @property
    def max_prompt_chars(self) -> int:
        return max(MIN_PROMPT_CHARS, CHARS_PER_TOKEN_LIMIT * self.engine.info.n_ctx)

    def check_size(self, messages: Sequence[Mapping[str, Any]] | str, param: str = "messages") -> None:
        """Refuse, before any tokenizing, more messages or characters than could ever fit."""
        if not isinstance(messages, str) and len(messages) > MAX_MESSAGES:
            raise InvalidRequestError(
                f"A request may hold at most {MAX_MESSAGES} messages; this one has {len(messages)}.", param=param
            )
        chars = len(messages) if isinstance(messages, str) else sum(len(m.get("content") or "") for m in messages)
        if chars > self.max_prompt_chars:
            raise InvalidRequestError(
                f"The prompt is {chars} characters long; this model's context of {self.engine.info.n_ctx} tokens "
                f"takes at most {self.max_prompt_chars}. Please shorten it.",
                param=param,
                code="context_length_exceeded",
            )

    def label(self, content_id: str) -> dict[str, str]:
        """The implicit AI-generated label of a reply (provider "mingyan" without a content policy)."""
        if self.safety is not None:
            return self.safety.label(content_id, self.model_name)
        return ai_label("mingyan", content_id, self.model_name)

    @property
    def model_name(self) -> str:
        return self.engine.info.name

    async def chat_request(
        self,
        messages: Sequence[Mapping[str, Any]],
        sampling: SamplingParams,
        *,
        user: str = "",
        scope: str = "",
        plan: ReplyPlan | None = None,
        **options: Any,
    ) -> GenerationRequest:
        """Render `messages` with the model's chat template; check that it fits. A `plan` shapes
        the reply: tools rendered in the family's format, tool turns converted, the plan's
        constraint and stops applied. `options`: more GenerationRequest fields (logit_bias, logprobs)."""
        if plan is None or plan.is_plain(messages):
            tokens = await self.prompt_tokens(messages, user=user)
            return self.request(tokens, sampling, user=user, scope=scope, **options)
        template = plan.format.chat_template(self._template())
        self.check_size(messages)  # tools or tool turns: rendered as the family's format has them, no default system
        chat = plan.format.prepare(messages, plan.tools, template.source)
        tools = plan.format.template_tools(template.source, plan.tools)
        tokens = await self.workers.run(
            user, lambda check: chat_prompt_tokens(self.engine, template, chat, tools, check=check)
        )
        stops = sampling.stop + tuple(s for s in plan.format.stop if plan.calls_tools and s not in sampling.stop)
        shaped = replace(sampling, constraint=plan.constraint, stop=stops)
        return self.request(tokens, shaped, user=user, scope=scope, **options)

    async def prompt_tokens(self, messages: Sequence[Mapping[str, str]], *, user: str = "") -> list[int]:
        """The prompt for `messages`, rendered with the model's chat template (in the prompt
        workers, fair per `user`; stopped if the caller is cancelled), led by the default system
        message when `messages` bring none."""
        template = self._template()
        messages = self.with_system(messages)
        self.check_size(messages)
        return await self.workers.run(
            user, lambda check: chat_prompt_tokens(self.engine, template, messages, check=check)
        )

    def _template(self) -> ChatTemplate:
        template = self.engine.chat_template
        if template is None:
            raise TemplateError(f"model {self.model_name} has no chat template; use /v1/completions with a raw prompt")
        return template

    async def text_request(
        self,
        prompt: str,
        sampling: SamplingParams,
        *,
        user: str = "",
        scope: str = "",
        **options: Any,
    ) -> GenerationRequest:
        self.check_size(prompt, "prompt")
        tokens = await self.workers.run(user, lambda _check: self.engine.tokenize(prompt))
        return self.request(tokens, sampling, user=user, scope=scope, **options)

    def request(
        self,
        tokens: list[int],
        sampling: SamplingParams,
        *,
        user: str = "",
        scope: str = "",
        label: str = "",
        **options: Any,
    ) -> GenerationRequest:
        """`scope`: the owner whose cached KV state the request may reuse; `label`: its conversation."""
        request = GenerationRequest(
            prompt_tokens=tuple(tokens),
            sampling=sampling,
            user=user,
            cache_scope=scope,
            cache_label=label,
            **options,
        )
        check_fits(request, self.engine.info.n_ctx)
        check_logit_bias(request, self.engine.info.n_vocab)
        return request

    def stream(self, request: GenerationRequest) -> EventStream:
        """The engine's stream, checked by the content policy as it comes (if there is one)."""
        events = self.engine.generate(request)
        return self.safety.guard(events, request) if self.safety is not None else events

    async def complete(self, request: GenerationRequest) -> Completed:
        return await collect(self.stream(request))  # generate raises now if not admitted


async def collect(stream: EventStream) -> Completed:
    """Read a stream to its finish event."""
    parts: list[str] = []
    logprobs: list[TokenLogprob] = []
    try:
        async for event in stream:
            parts.append(event.text)
            logprobs += event.logprobs
            if event.finish_reason is not None:
                assert event.usage is not None
                return Completed("".join(parts), event.finish_reason, event.usage, tuple(logprobs))
    finally:
        await stream.aclose()
    raise RuntimeError("engine stream ended without a finish event")
