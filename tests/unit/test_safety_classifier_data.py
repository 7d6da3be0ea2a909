"""The classifier's training data (mingyan/safety/classifier/train_*.tsv) is well formed and written
apart from the held-out test banks (tests/fixtures/safety_banks/): no training item equals a bank item
once normalised, nor shares 60% or more of its character 4-grams with one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mingyan.safety.normalize import Normalizer
from mingyan.safety.policy import CATEGORIES

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "mingyan" / "safety" / "classifier"
BANKS = ROOT / "tests" / "fixtures" / "safety_banks"
NEAR = 0.6


def training_rows(language: str) -> list[tuple[str, str]]:
    lines = (TRAINING / f"train_{language}.tsv").read_text(encoding="utf-8").splitlines()
    return [(label, text) for label, text in (line.split("\t", 1) for line in lines if line.strip())]


def bank_items() -> list[str]:
    items = []
    for path in sorted(BANKS.glob("*.txt")):
        items += [s for line in path.read_text(encoding="utf-8").splitlines() if (s := line.strip()) and s[0] != "#"]
    return items


def grams(key: str) -> set[str]:
    return {key[i : i + 4] for i in range(len(key) - 3)} or {key}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_training_files_have_enough_of_every_label(language: str) -> None:
    counts = Counter(label for label, _ in training_rows(language))
    assert set(counts) == {*CATEGORIES, "ok"}
    assert min(counts[c] for c in CATEGORIES) >= 50, counts
    assert counts["ok"] >= 390, counts


def test_no_training_item_is_a_near_duplicate_of_a_bank_item() -> None:
    normalizer = Normalizer()
    banks = [(item, normalizer.key(item)) for item in bank_items()]
    assert len(banks) > 2000
    index: dict[str, set[int]] = {}
    bank_grams = []
    for i, (_, key) in enumerate(banks):
        bank_grams.append(grams(key))
        for gram in bank_grams[-1]:
            index.setdefault(gram, set()).add(i)
    found = []
    for language in ("zh", "en"):
        for _, text in training_rows(language):
            key = normalizer.key(text)
            mine = grams(key)
            candidates = set().union(*(index.get(g, set()) for g in mine))
            for i in candidates:
                jaccard = len(mine & bank_grams[i]) / len(mine | bank_grams[i])
                if key == banks[i][1] or jaccard >= NEAR:
                    found.append(f"{text!r} ~ {banks[i][0]!r} ({jaccard:.2f})")
    assert not found, "training items too close to held-out bank items:\n" + "\n".join(found)
