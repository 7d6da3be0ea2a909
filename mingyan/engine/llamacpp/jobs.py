"""Jobs waiting for the engine, and the fair, bounded queue that holds them.

Each job carries the caller's event loop and an asyncio queue; the decode thread collects a
step's events and hands them to each loop with one `call_soon_threadsafe` per step. The queue
is round-robin across users, so one client's ten requests cannot starve another client's one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mingyan.engine.base import GenerationRequest, TokenEvent
from mingyan.errors import EngineBusyError


@dataclass
class Job:
    request: GenerationRequest
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.monotonic)
    _outbox: list[TokenEvent | Exception] = field(default_factory=list)  # decode thread only

    @property
    def user(self) -> str:
        return self.request.user

    def push(self, event: TokenEvent) -> None:
        """Queue a text event; it goes out with the next `flush` (once per decode step)."""
        self._outbox.append(event)

    def emit(self, item: TokenEvent | Exception) -> None:
        """Send `item` now, after whatever was pushed before it."""
        self._outbox.append(item)
        self.flush()

    def flush(self) -> None:
        """Hand the queued events to the caller's loop in one call."""
        flush_all([self])

    def take(self) -> list[TokenEvent | Exception]:
        """The queued events, consecutive text events joined into one (text and log-probabilities
        in order); the outbox is emptied."""
        items, self._outbox = _joined(self._outbox), []
        return items

    def deliver(self, items: list[TokenEvent | Exception]) -> None:
        """On the caller's loop: make `items` readable by the stream."""
        for item in items:
            self.events.put_nowait(item)


def flush_all(jobs: list[Job]) -> None:
    """Hand the queued events of `jobs` to their loops: one `call_soon_threadsafe` per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, list[TokenEvent | Exception]]]] = {}
    for job in jobs:
        if job._outbox:
            by_loop.setdefault(job.loop, []).append((job, job.take()))
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver_all, batch)
        except RuntimeError:  # the caller's loop is gone: nobody is listening
            for job, _ in batch:
                job.cancelled.set()


def _deliver_all(batch: list[tuple[Job, list[TokenEvent | Exception]]]) -> None:
    for job, items in batch:
        job.deliver(items)


def _joined(items: list[TokenEvent | Exception]) -> list[TokenEvent | Exception]:
    out: list[TokenEvent | Exception] = []
    for item in items:
        last = out[-1] if out else None
        if (
            isinstance(item, TokenEvent)
            and isinstance(last, TokenEvent)
            and last.finish_reason is None
            and item.finish_reason is None
        ):
            out[-1] = TokenEvent(last.text + item.text, logprobs=last.logprobs + item.logprobs)
        else:
            out.append(item)
    return out


class FairQueue:
    """Bounded FIFO per user; the next job goes to the waiting user served least recently
    (a user never served first), so users take turns whatever their number of requests.
    Thread-safe."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._by_user: OrderedDict[str, deque[Job]] = OrderedDict()  # in order of arrival
        self._last_served: dict[str, int] = {}
        self._turn = 0
        self._size = 0
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return self._size

    def put(self, job: Job, retry_after_s: float) -> None:
        with self._cond:
            if self._size >= self.max_size:
                raise EngineBusyError(
                    f"The server is busy: {self._size} requests are waiting. Retry shortly.",
                    retry_after_s=retry_after_s,
                )
            self._by_user.setdefault(job.user, deque()).append(job)
            self._size += 1
            self._cond.notify()

    def pop(self) -> Job | None:
        """The next job of the waiting user served least recently; None when empty."""
        with self._cond:
            while self._by_user:
                user = min(self._by_user, key=lambda u: self._last_served.get(u, -1))
                jobs = self._by_user[user]
                job = jobs.popleft()
                self._size -= 1
                if not jobs:
                    del self._by_user[user]
                if job.cancelled.is_set():
                    continue
                self._turn += 1
                self._last_served[user] = self._turn
                if len(self._last_served) > 4 * self.max_size:  # forget long-gone users
                    self._last_served = {u: t for u, t in self._last_served.items() if u in self._by_user or u == user}
                return job
            return None

    def wait(self, timeout: float) -> None:
        with self._cond:
            if self._size == 0:
                self._cond.wait(timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def drain(self) -> list[Job]:
        with self._cond:
            jobs = [job for queue in self._by_user.values() for job in queue]
            self._by_user.clear()
            self._size = 0
            return jobs


class JobStream:
    """The events of one job. Closing it cancels the job, whether or not it was ever iterated
    (a client can vanish before the first event is read)."""

    def __init__(self, job: Job, wake: Callable[[], None]) -> None:
        self._job = job
        self._wake = wake
        self._done = False

    def __aiter__(self) -> JobStream:
        return self

    async def __anext__(self) -> TokenEvent:
        if self._done:
            raise StopAsyncIteration
        try:
            item = await self._job.events.get()
        except BaseException:
            await self.aclose()
            raise
        if isinstance(item, Exception):
            await self.aclose()
            raise item
        if item.finish_reason is not None:
            self._finish()
        return item

    async def aclose(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._job.cancelled.set()  # a finished job ignores this
            self._wake()
