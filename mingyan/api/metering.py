"""Admission of HTTP requests to generation: quotas first, then the engine (or a stored reply),
with usage recorded when the generation ends. The bookkeeping itself is in mingyan.accounts.metering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import Request

from mingyan.accounts.metering import MeteredStream
from mingyan.accounts.principal import Principal
from mingyan.api.context import context
from mingyan.chat.conversations import Exchange
from mingyan.chat.live import LiveReply
from mingyan.chat.service import ChatService
from mingyan.engine.base import EventStream, GenerationRequest


async def metered_stream(
    request: Request,
    principal: Principal,
    route: str,
    prepare: Callable[[], Awaitable[GenerationRequest]],
    service: ChatService | None = None,
    wrap: Callable[[EventStream], EventStream] | None = None,
) -> MeteredStream:
    """Admit the caller (quotas) before any heavy work, then `prepare` the job (template,
    tokens), admit it to the engine, and return its events: usage is recorded when the stream is
    closed, and it ends with AccessRevoked if the caller is cut off meanwhile.

    Raises before any token: QuotaExceeded, EngineBusyError, ContextLengthError. `service`: the
    chat service of the request's model (default: the server's first model). `wrap`: applied to
    the engine's stream inside the metering (a second generation it starts is metered too).
    """
    state = context(request)
    chat = service or state.chat
    admission = await asyncio.to_thread(state.meter.admit, principal)
    try:
        job = await prepare()
        events = chat.stream(job)
        if wrap is not None:
            events = wrap(events)
    except BaseException:
        admission.release()
        raise
    return MeteredStream(
        events,
        state.meter,
        state.cutoffs,
        principal,
        route,
        chat.model_name,
        len(job.prompt_tokens),
        admission,
    )


async def metered_reply(
    request: Request, principal: Principal, route: str, start: Callable[[], Awaitable[Exchange]]
) -> Exchange:
    """Admit a stored-conversation reply (quotas), start it, and record its usage when it ends."""
    state = context(request)
    admission = await asyncio.to_thread(state.meter.admit, principal)
    try:
        exchange = await start()
    except BaseException:
        admission.release()
        raise
    loop = asyncio.get_running_loop()

    def finished(reply: LiveReply) -> None:
        admission.release()
        model = reply.message.model_name or state.chat.model_name
        loop.run_in_executor(None, state.meter.record, principal, route, model, reply.usage)

    exchange.reply.on_finish(finished)
    return exchange
