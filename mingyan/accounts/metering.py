"""Admission and accounting for every generation: quotas before, usage after, and a cut-off switch.

- `Meter.admit` checks the caller's quotas (their account's, and their API key's) before anything
  is generated or written, and raises `QuotaExceeded` (429) when one is used up. The operator's
  local identity (no accounts, or the server's `--api-key`) has no quotas.
- `Meter.record` writes the usage of a finished request.
- `Cutoffs` lets an administrator end a user's (or a key's) running streams at once.
- `MeteredStream` holds a generation's quota place and cut-off watch, and records its usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from mingyan.accounts.principal import Principal
from mingyan.accounts.quotas import Admission, QuotaGate, Subject
from mingyan.config import Settings
from mingyan.engine.base import EventStream, TokenEvent, Usage
from mingyan.errors import AccessRevoked
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.types import Quota


def default_quota(settings: Settings) -> Quota:
    """The server's defaults; 0 in the settings means no limit."""
    return Quota(
        requests_per_minute=settings.quota_requests_per_minute or None,
        tokens_per_day=settings.quota_tokens_per_day or None,
        concurrent_streams=settings.quota_concurrent_streams or None,
    )


class Meter:
    def __init__(self, accounts: AccountStore | None, defaults: Quota, gate: QuotaGate | None = None) -> None:
        self.accounts = accounts
        self.defaults = defaults
        self.gate = gate or QuotaGate()

    def admit(self, principal: Principal) -> Admission:
        """Let a generation in or raise QuotaExceeded. Blocking (reads quotas and today's usage)."""
        if not principal.has_account or self.accounts is None:
            return self.gate.admit([])
        accounts, user_id = self.accounts, principal.user_id
        since = self.gate.day_start()
        quota = accounts.ledger.get_quota(user_id, self.defaults)
        subjects = [
            Subject(f"user:{user_id}", quota, tokens_today=lambda: accounts.ledger.tokens_used_since(user_id, since))
        ]
        if principal.key is not None:
            key = principal.key
            key_quota = Quota(
                requests_per_minute=key.limits.requests_per_minute or self.defaults.requests_per_minute,
                tokens_per_day=key.limits.tokens_per_day,
                concurrent_streams=key.limits.concurrent_streams or self.defaults.concurrent_streams,
            )
            subjects.append(
                Subject(
                    f"key:{key.id}",
                    key_quota,
                    tokens_today=lambda: accounts.ledger.tokens_used_since(user_id, since, api_key_id=key.id),
                )
            )
        return self.gate.admit(subjects)

    def record(self, principal: Principal, route: str, model: str, usage: Usage | None) -> None:
        """Write one finished request's usage (blocking). Nothing is recorded for the local identity."""
        if usage is None or not principal.has_account or self.accounts is None:
            return
        self.accounts.ledger.record_usage(
            principal.user_id,
            route=route,
            model=model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
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


class MeteredStream:
    """An engine stream that holds its quota place and its cut-off watch until closed.

    `aclose()` works whether or not the stream was read: it cancels generation, frees the place
    and records the usage, once."""

    def __init__(
        self,
        events: EventStream,
        meter: Meter,
        cutoffs: Cutoffs,
        principal: Principal,
        route: str,
        model: str,
        prompt_tokens: int,
        admission: Admission,
    ) -> None:
        self._events, self._principal, self._route, self._model = events, principal, route, model
        self._meter, self._cutoffs, self._admission = meter, cutoffs, admission
        self._cutoff = cutoffs.open(principal)
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
        self._cutoffs.close(self._cutoff)
        await self._events.aclose()
        self._admission.release()
        usage = self._usage
        if not usage.completion_tokens:  # cut short: no usage event; one piece is about one token
            usage = Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=self._pieces)
        await asyncio.to_thread(self._meter.record, self._principal, self._route, self._model, usage)
