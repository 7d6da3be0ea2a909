"""/v1 routes: parse, call the chat service, serialize. No logic beyond that."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from mingyan.api.auth import CurrentPrincipal, client_identity, require_principal
from mingyan.api.chat_chunks import chunk_maker, reply_message
from mingyan.api.context import context
from mingyan.api.logprobs import chat_logprobs, completion_logprobs
from mingyan.api.metering import metered_stream
from mingyan.api.model_routing import chat_for, model_cards, upstream_of
from mingyan.api.schemas import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
    Completion,
    CompletionRequest,
    ModelCard,
    ModelList,
    TextChoice,
    new_id,
    now,
)
from mingyan.api.streaming import (
    buffer_bytes,
    sse_events,
    sse_response,
    unless_disconnected,
    usage_info,
)
from mingyan.api.upstream_proxy import forward
from mingyan.chat.service import ChatService, collect
from mingyan.chat.tool_calling import plan_reply, response_constraint
from mingyan.chat.tool_repeat import repeat_guard
from mingyan.engine.base import TokenEvent
from mingyan.safety.labels import HEADER, header_value

router = APIRouter(prefix="/v1", dependencies=[Depends(require_principal)])


async def _service(request: Request, model: str | None) -> ChatService:
    return await chat_for(context(request), model)


@router.get("/models")
async def list_models(request: Request) -> ModelList:
    ctx = context(request)
    created = ctx.started
    cards = model_cards(ctx)
    if (embedder := ctx.embedder) is not None:
        cards.append(
            ModelCard(
                id=embedder.info.name, created=created, context_length=embedder.info.max_input_tokens, kind="embedding"
            )
        )
    return ModelList(data=cards)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, response: Response, principal: CurrentPrincipal
):
    service = await _service(request, body.model)
    messages = [m.as_template_dict() for m in body.messages]
    await service.check_prompt(
        [m["content"] or "" for m in messages if m["role"] != "assistant"], owner=principal.user_id
    )
    if (upstream := upstream_of(context(request), service)) is not None:
        return await forward(request, principal, "chat.completions", "/chat/completions", body, upstream)
    user = client_identity(request, principal, body.user)
    plan = plan_reply(service.engine.info.family, body.tool_request(), response_constraint(*body.response_kind()))
    options = {"user": user, "scope": principal.user_id, **body.engine_options()}
    guard = repeat_guard(service, messages, body.sampling(), plan, **options)  # an answered call is not repeated
    events = await metered_stream(
        request,
        principal,
        "chat.completions",
        lambda: unless_disconnected(
            request,
            lambda: service.chat_request(
                messages, body.sampling(), user=user, scope=principal.user_id, plan=plan, **body.engine_options()
            ),
        ),
        service,
        wrap=guard,
    )
    cid, created, model = new_id("chatcmpl"), now(), service.model_name
    label = service.label(cid)
    response.headers[HEADER] = header_value(label)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        first = ChatCompletionChunk(
            id=cid,
            created=created,
            model=model,
            choices=[ChatChunkChoice(delta=ChatDelta(role="assistant", content=""))],
            ai_label=label,
        )
        chunks = chunk_maker(plan, cid, created, model, include_usage, logprobs=body.logprobs)
        stream = sse_response(sse_events(events, chunks, first), events.aclose, buffer_bytes=buffer_bytes(request))
        stream.headers[HEADER] = header_value(label)
        return stream
    done = await unless_disconnected(request, lambda: collect(events))
    message, reason = reply_message(plan, done.text, done.finish_reason)
    choice = ChatChoice(
        message=message, finish_reason=reason, logprobs=chat_logprobs(done.logprobs) if body.logprobs else None
    )
    usage = usage_info(done.usage)
    return ChatCompletion(id=cid, created=created, model=model, choices=[choice], usage=usage, ai_label=label)


@router.post("/completions", response_model=None)
async def completions(body: CompletionRequest, request: Request, response: Response, principal: CurrentPrincipal):
    service = await _service(request, body.model)
    await service.check_prompt([str(body.prompt)], owner=principal.user_id, param="prompt")
    if (upstream := upstream_of(context(request), service)) is not None:
        return await forward(request, principal, "completions", "/completions", body, upstream)
    prompt = str(body.prompt)
    user = client_identity(request, principal, body.user)
    events = await metered_stream(
        request,
        principal,
        "completions",
        lambda: unless_disconnected(
            request,
            lambda: service.text_request(
                prompt, body.sampling(), user=user, scope=principal.user_id, **body.engine_options()
            ),
        ),
        service,
    )
    cid, created, model = new_id("cmpl"), now(), service.model_name
    label = service.label(cid)
    response.headers[HEADER] = header_value(label)
    echo = prompt if body.echo else ""
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        sent = [0]  # characters of token text so far, for text_offset

        def chunks(event: TokenEvent) -> list[BaseModel]:
            reason = event.finish_reason.value if event.finish_reason else None
            if not event.text and reason is None:
                return []
            usage = usage_info(event.usage) if include_usage and event.usage else None
            logprobs = None
            if body.logprobs is not None:
                logprobs = completion_logprobs(event.logprobs, sent[0])
                sent[0] += sum(len(e.token) for e in event.logprobs)
            choice = TextChoice(text=event.text, finish_reason=reason, logprobs=logprobs)
            return [Completion(id=cid, created=created, model=model, choices=[choice], usage=usage, ai_label=label)]

        first = Completion(id=cid, created=created, model=model, choices=[TextChoice(text=echo)]) if echo else None
        stream = sse_response(sse_events(events, chunks, first), events.aclose, buffer_bytes=buffer_bytes(request))
        stream.headers[HEADER] = header_value(label)
        return stream
    done = await unless_disconnected(request, lambda: collect(events))
    choice = TextChoice(
        text=echo + done.text,
        finish_reason=done.finish_reason.value,
        logprobs=completion_logprobs(done.logprobs) if body.logprobs is not None else None,
    )
    return Completion(
        id=cid, created=created, model=model, choices=[choice], usage=usage_info(done.usage), ai_label=label
    )
