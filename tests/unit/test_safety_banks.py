"""The test banks (tests/fixtures/safety_banks) against the default policy's prompt check alone:
no must-answer item is refused, and the should-refuse items are caught (a regression guard for the
keyword banks; bench/moderation.py runs both banks through the real model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mingyan.config import Settings
from mingyan.safety.moderator import Moderator
from mingyan.safety.policy import Policy

BANKS = Path(__file__).resolve().parent.parent / "fixtures" / "safety_banks"


def items(name: str) -> list[str]:
    lines = (BANKS / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return Moderator(Policy.from_settings(Settings()))


@pytest.mark.parametrize("name", ["must_answer_zh", "must_answer_en"])
def test_no_must_answer_item_trips_the_prompt_check(moderator: Moderator, name: str) -> None:
    bank = items(name)
    assert len(bank) >= 50
    assert [item for item in bank if moderator.check(item).flagged] == []


@pytest.mark.parametrize("name", ["should_refuse_zh", "should_refuse_en"])
def test_the_prompt_check_catches_should_refuse_items(moderator: Moderator, name: str) -> None:
    bank = items(name)
    assert len(bank) >= 80
    caught = sum(bool(moderator.check(item).blocked) for item in bank)
    assert caught / len(bank) >= 0.95, f"{caught}/{len(bank)}"
