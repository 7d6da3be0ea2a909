"""Admission and accounting for every generation: quotas before, usage after, and a cut-off switch.

- `Meter.admit` checks the caller's quotas (their account's, and their API key's) before anything
  is generated or written, and raises `QuotaExceeded` (429) when one is used up. The operator's
  local identity (no accounts, or the server's `--api-key`) has no quotas.
- `Meter.record` writes the usage of a finished request.
- `Cutoffs` lets an administrator end a user's (or a key's) running streams at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from mingyan.api.auth import Principal
from mingyan.chat.conversations import Exchange
from mingyan.chat.live import LiveReply
from mingyan.chat.quotas import Admission, QuotaGate, Subject
from mingyan.config import Settings
from mingyan.engine.base import EventStream, GenerationRequest, TokenEvent, Usage
from mingyan.errors import AccessRevoked
from mingyan.store.account_types import Quota
from mingyan.store.accounts import Accounts


def default_quota(settings: Settings) -> Quota:
    """The server's defaults; 0 in the settings means no limit."""
    return Quota(
        requests_per_minute=settings.quota_requests_per_minute or None,
        tokens_per_day=settings.quota_tokens_per_day or None,
        concurrent_streams=settings.quota_concurrent_streams or None,
    )


class Meter:
    def __init__(self, accounts: Accounts | None, defaults: Quota, gate: QuotaGate | None = None) -> None:
        self.accounts = accounts
        self.defaults = defaults
        self.gate = gate or QuotaGate()

    def admit(self, principal: Principal) -> Admission:
        """Let a generation in or raise QuotaExceeded. Blocking (reads quotas and today's usage)."""
        if not principal.has_account or self.accounts is None:
            return self.gate.admit([])
        accounts, user_id = self.accounts, principal.user_id
        since = self.gate.day_start()
        quota = accounts.get_quota(user_id, self.defaults)
        subjects = [Subject(
            f"user:{user_id}", quota, tokens_today=lambda: accounts.tokens_used_since(user_id, since)
        )]
        if principal.key is not None:
            key = principal.key
            key_quota = Quota(
                requests_per_minute=key.limits.requests_per_minute or self.defaults.requests_per_minute,
                tokens_per_day=key.limits.tokens_per_day,
                concurrent_streams=key.limits.concurrent_streams or self.defaults.concurrent_streams,
            )
            subjects.append(Subject(
                f"key:{key.id}", key_quota,
                tokens_today=lambda: accounts.tokens_used_since(user_id, since, api_key_id=key.id),
            ))
        return self.gate.admit(subjects)

    def record(self, principal: Principal, route: str, model: str, usage: Usage | None) -> None:
        """Write one finished request's usage (blocking). Nothing is recorded for the local identity."""
        if usage is None or not principal.has_account or self.accounts is None:
            return
        self.accounts.record_usage(
            principal.user_id, route=route, model=model, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, cached_tokens=usage.cached_tokens,
            api_key_id=principal.key.id if principal.key else None,
        )


@dataclass(eq=False)
class Cutoff:
    user_id: str
    key_id: str | None
    event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def cut(self) -> bool:
        return self.event.is_set()


class Cutoffs:
    """Running streams by user and key, so that disabling a user or revoking a key ends them."""

    def __init__(self) -> None:
        self._open: set[Cutoff] = set()

    def open(self, principal: Principal) -> Cutoff:
        """Watch one stream of `principal` until `close(cutoff)`."""
        cutoff = Cutoff(principal.user_id, principal.key.id if principal.key else None)
        self._open.add(cutoff)
        return cutoff

    def close(self, cutoff: Cutoff) -> None:
        self._open.discard(cutoff)

    def cut(self, *, user_id: str | None = None, key_id: str | None = None) -> int:
        """Signal every stream of `user_id` (or using `key_id`); returns how many."""
        hit = [c for c in self._open if (user_id and c.user_id == user_id) or (key_id and c.key_id == key_id)]
        for cutoff in hit:
            cutoff.event.set()
        return len(hit)


async def metered_stream(
    request: Request, principal: Principal, route: str, prepare: Callable[[], Awaitable[GenerationRequest]]
) -> MeteredStream:
    """Admit the caller (quotas) before any heavy work, then `prepare` the job (template,
    tokens), admit it to the engine, and return its events: usage is recorded when the stream is
    closed, and it ends with AccessRevoked if the caller is cut off meanwhile.

    Raises before any token: QuotaExceeded, EngineBusyError, ContextLengthError.
    """
    state = request.app.state
    admission = await asyncio.to_thread(state.meter.admit, principal)
    try:
        job = await prepare()
        events = state.chat.stream(job)
    except BaseException:
        admission.release()
        raise
    return MeteredStream(events, state, principal, route, len(job.prompt_tokens), admission)


class MeteredStream:
    """An engine stream that holds its quota place and its cut-off watch until closed.

    `aclose()` works whether or not the stream was read: it cancels generation, frees the place
    and records the usage, once."""

    def __init__(
        self, events: EventStream, state: Any, principal: Principal, route: str, prompt_tokens: int,
        admission: Admission,
    ) -> None:
        self._events, self._state, self._principal, self._route = events, state, principal, route
        self._admission = admission
        self._cutoff = state.cutoffs.open(principal)
        self._usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=0)
        self._pieces = 0
        self._closed = False

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TokenEvent]:
        try:
            async for event in self._events:
                if self._cutoff.cut:
                    raise AccessRevoked("This account or API key was disabled; the reply was stopped.")
                self._pieces += bool(event.text)
                if event.usage is not None:
                    self._usage = event.usage
                yield event
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._state.cutoffs.close(self._cutoff)
        await self._events.aclose()
        self._admission.release()
        usage = self._usage
        if not usage.completion_tokens:  # cut short: no usage event; one piece is about one token
            usage = Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=self._pieces)
        await asyncio.to_thread(self._state.meter.record, self._principal, self._route,
                                self._state.chat.model_name, usage)


async def metered_reply(
    request: Request, principal: Principal, route: str, start: Callable[[], Awaitable[Exchange]]
) -> Exchange:
    """Admit a stored-conversation reply (quotas), start it, and record its usage when it ends."""
    state = request.app.state
    admission = await asyncio.to_thread(state.meter.admit, principal)
    try:
        exchange = await start()
    except BaseException:
        admission.release()
        raise
    loop = asyncio.get_running_loop()

    def finished(reply: LiveReply) -> None:
        admission.release()
        loop.run_in_executor(None, state.meter.record, principal, route, state.chat.model_name, reply.usage)

    exchange.reply.on_finish(finished)
    return exchange
