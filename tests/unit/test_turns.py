"""TurnQueue: jobs take turns in arrival order; an unfinished job goes to the end of the line."""

from __future__ import annotations

import threading

from mingyan.engine.turns import TurnQueue


def test_turns_rotate_and_close_hands_back_the_rest() -> None:
    turns: TurnQueue[str] = TurnQueue()
    assert turns.put("long") and turns.put("short")
    job = turns.take()
    assert job == "long" and turns.again(job)  # not finished: back of the line
    assert turns.take() == "short"
    assert turns.put("next")
    assert turns.close() == ["long", "next"]
    assert turns.take() is None and not turns.put("late") and not turns.again("long")


def test_take_waits_for_a_job_or_close() -> None:
    turns: TurnQueue[int] = TurnQueue()
    got: list[int | None] = []
    worker = threading.Thread(target=lambda: got.extend([turns.take(), turns.take()]))
    worker.start()
    turns.put(1)
    worker.join(0.2)
    assert worker.is_alive() and got == []  # the second take waits
    turns.close()
    worker.join(5)
    assert got == [1, None]
