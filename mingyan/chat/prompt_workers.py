"""Prompt preparation (templating, tokenizing) in its own bounded thread pool, fair per user.

Preparing a prompt is CPU work done before the engine sees a request. It runs here, not in the
event loop's default pool, so it can never hold up authentication (which runs there) or other
users: the pool has a few threads, and one user has at most `per_user` of them at a time (their
other requests wait their turn without taking a thread). When the caller goes away (its task is
cancelled: the client disconnected) the work is told to stop at its next check, and the user's
place is freed only once the thread is done with it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class PreparationCancelled(Exception):
    """Raised inside a preparation whose caller went away."""


class PromptWorkers:
    def __init__(self, workers: int = 4, per_user: int = 1) -> None:
        self.workers = workers
        self.per_user = per_user
        self._pool: ThreadPoolExecutor | None = None
        self._places: dict[str, asyncio.Semaphore] = {}
        self._holders: Counter[str] = Counter()

    async def run(self, user: str, work: Callable[[Callable[[], None]], T]) -> T:
        """`work(check)` on a pool thread, once `user` has a free place; `check()` raises
        PreparationCancelled after the caller was cancelled."""
        if self._pool is None:  # created on first use, not at construction (no threads at import)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="prompt")
        place = self._places.setdefault(user, asyncio.Semaphore(self.per_user))
        self._holders[user] += 1
        try:
            async with place:
                return await self._run_once(work)
        finally:
            self._holders[user] -= 1
            if not self._holders[user]:
                del self._holders[user], self._places[user]

    async def _run_once(self, work: Callable[[Callable[[], None]], T]) -> T:
        stop = threading.Event()

        def check() -> None:
            if stop.is_set():
                raise PreparationCancelled("the client went away")

        future = asyncio.get_running_loop().run_in_executor(self._pool, work, check)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            stop.set()
            await asyncio.wait({future})  # the user's place stays taken until the thread is done
            if not future.cancelled():
                future.exception()  # retrieved: PreparationCancelled is expected here
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
