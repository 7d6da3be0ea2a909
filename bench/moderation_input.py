"""The input pipeline alone (keyword banks, then the trained safety classifier; no model, nothing
generated) over every item of the four test banks (tests/fixtures/safety_banks/), with the product's
default policy and `--moderation-classifier block`.

For each bank: items refused by the keywords, by the classifier (of those the keywords let through),
by either (what a deployment with the classifier on refuses before generation), and by the
classifier alone (keywords ignored). Then the classify latency (one prompt per call, as the server
does it) on a seeded sample: p50/p95 in milliseconds. The refusal counts embed the banks in batches
(the same vectors, faster).

    python bench/moderation.py --classifier [--latency 200] [--threads 2] [--limit 0] [--json PATH]
    python bench/moderation_input.py ...  (the same)

TC260-003 asks >= 95% refused on should-refuse and <= 5% on must-answer, per language. Figures of
latency depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np

from mingyan.bootstrap import open_embedder
from mingyan.config import Settings
from mingyan.safety.classifier import SafetyClassifier, windows
from mingyan.safety.gate import Safety
from mingyan.safety.refusals import ContentFiltered

BANKS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "safety_banks"
BANK_NAMES = ("should_refuse_zh", "should_refuse_en", "must_answer_zh", "must_answer_en")


def load_bank(name: str) -> list[str]:
    lines = (BANKS / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def keyword_refused(safety: Safety, item: str) -> bool:
    try:
        safety.screen([item])
    except ContentFiltered:
        return True
    return False


async def classified(classifier: SafetyClassifier, items: list[str], batch: int = 64) -> list[str | None]:
    """The classifier's category (None: let through) of each item, embedded in batches."""
    found: list[str | None] = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        vectors = (await classifier.embedder.embed([windows([item])[0] for item in chunk])).vectors
        probabilities = classifier.weights.probabilities(np.asarray(vectors, dtype=np.float64))
        found += [classifier.decide(row[None, :]).category for row in probabilities]
    return found


def percent(n: int, total: int) -> float:
    return round(100.0 * n / total, 1) if total else 0.0


async def run_bank(safety: Safety, name: str, limit: int | None) -> dict[str, object]:
    assert safety.classifier is not None
    items = load_bank(name)[:limit]
    by_keywords = [keyword_refused(safety, item) for item in items]
    categories = await classified(safety.classifier, items)
    blocked = set(safety.moderator.policy.checked)  # the default policy blocks every checked category
    by_classifier = [c is not None and c in blocked for c in categories]
    either = [k or c for k, c in zip(by_keywords, by_classifier, strict=True)]
    n = len(items)
    return {
        "items": n,
        "keywords": sum(by_keywords),
        "classifier_after_keywords": sum(c and not k for k, c in zip(by_keywords, by_classifier, strict=True)),
        "refused": sum(either),
        "refused_pct": percent(sum(either), n),
        "keywords_pct": percent(sum(by_keywords), n),
        "classifier_alone_pct": percent(sum(by_classifier), n),
    }


async def latency(safety: Safety, items: list[str]) -> dict[str, float]:
    assert safety.classifier is not None
    times = []
    for item in items:
        start = time.perf_counter()
        await safety.classifier.classify([item])
        times.append(1000 * (time.perf_counter() - start))
    times.sort()
    return {
        "prompts": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1),
    }


async def run(safety: Safety, args: argparse.Namespace) -> dict[str, object]:
    banks = {name: await run_bank(safety, name, args.limit or None) for name in BANK_NAMES}
    pool = [item for name in BANK_NAMES for item in load_bank(name)]
    sample = random.Random(args.seed).sample(pool, min(args.latency, len(pool)))
    return {"banks": banks, "latency": await latency(safety, sample) if sample else {}}


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency", type=int, default=200, help="prompts timed one by one (0: skip)")
    parser.add_argument("--limit", type=int, default=0, help="first N items of each bank only (0: all)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")


def main(args: argparse.Namespace) -> None:
    settings = Settings(moderation_classifier="block", n_threads=args.threads)  # otherwise the defaults
    embedder = open_embedder(settings, progress=False)
    try:
        figures = asyncio.run(run(Safety.from_settings(settings, embedder=embedder), args))
    finally:
        if embedder is not None:
            embedder.close()  # type: ignore[attr-defined]
    print(json.dumps(figures, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_options(parser)
    main(parser.parse_args())
