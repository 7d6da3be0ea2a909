"""Prompt preparation's own pool: one user cannot take every thread; a cancelled caller stops its work."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mingyan.chat.prompt_workers import PreparationCancelled, PromptWorkers


def test_one_users_many_preparations_leave_room_for_another() -> None:
    workers = PromptWorkers(workers=2, per_user=1)
    order: list[str] = []

    def slow(name: str):
        def work(check) -> str:
            time.sleep(0.2)
            order.append(name)
            return name

        return work

    async def scenario() -> None:
        flood = [asyncio.create_task(workers.run("mallory", slow(f"m{i}"))) for i in range(5)]
        await asyncio.sleep(0.05)
        start = time.monotonic()
        assert await workers.run("alice", slow("alice")) == "alice"
        assert time.monotonic() - start < 0.35  # not behind mallory's queue
        await asyncio.gather(*flood)

    asyncio.run(scenario())
    assert order.index("alice") <= 1
    workers.close()


def test_a_cancelled_caller_stops_the_work_at_its_next_check() -> None:
    workers = PromptWorkers(workers=1)
    checks, stopped = threading.Event(), threading.Event()

    def endless(check) -> None:
        checks.set()
        try:
            while True:
                check()
                time.sleep(0.01)
        except PreparationCancelled:
            stopped.set()
            raise

    async def scenario() -> None:
        task = asyncio.create_task(workers.run("mallory", endless))
        while not checks.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stopped.is_set()  # the place was held until the thread let go
        assert await workers.run("mallory", lambda check: "next") == "next"

    asyncio.run(scenario())
    workers.close()
