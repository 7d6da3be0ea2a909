"""Train the safety classifier (mingyan/safety/classifier.py) and write its weights.

The training texts (mingyan/safety/classifier/train_zh.tsv and train_en.tsv, `label<TAB>text`) are
embedded with the shipped embedding model through mingyan's embedder ("query: " first, as e5 wants),
standardised, and fitted with a multinomial logistic regression (numpy, full-batch gradient descent
with momentum, L2, zero start: deterministic). The decision threshold on 1 - p(ok) is picked by
k-fold cross-validation on the training set only: the lowest threshold at which at most
`--max-fp` of the `ok` items of each language are flagged out of fold. The standardisation is folded into the
stored matrix and bias, so the server scores raw unit vectors.

    python bench/train_safety_classifier.py [--folds 5] [--max-fp 0.03] [--l2 0.001] [--steps 1500]
                                            [--seed 14] [--out mingyan/safety/classifier/weights.json]

Retrain after editing the training files or changing the embedding model (the weights name the
model's sha256 and the server refuses to start with another one).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path

import numpy as np

from mingyan.bootstrap import open_embedder
from mingyan.config import Settings
from mingyan.engine.base import Embedder
from mingyan.safety.classifier import OK, QUERY_PREFIX, shipped_weights, softmax
from mingyan.safety.policy import CATEGORIES

DATA = shipped_weights().parent
LANGUAGES = ("zh", "en")
LABELS = (OK, *CATEGORIES)


def read_training() -> tuple[list[str], list[str], list[str]]:
    """(labels, texts, languages) of every training row."""
    labels, texts, languages = [], [], []
    for language in LANGUAGES:
        for line in (DATA / f"train_{language}.tsv").read_text(encoding="utf-8").splitlines():
            if line.strip():
                label, text = line.split("\t", 1)
                if label not in LABELS:
                    raise SystemExit(f"train_{language}.tsv: unknown label {label!r}")
                labels.append(label)
                texts.append(text.strip())
                languages.append(language)
    return labels, texts, languages


def embed_all(embedder: Embedder, texts: list[str], batch: int = 64) -> np.ndarray:
    async def run() -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), batch):
            chunk = [QUERY_PREFIX + t for t in texts[start : start + batch]]
            vectors += (await embedder.embed(chunk)).vectors
        return vectors

    return np.asarray(asyncio.run(run()), dtype=np.float64)


def fit(x: np.ndarray, y: np.ndarray, n_labels: int, l2: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on standardised `x`: (matrix, bias) for raw `x`."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-8
    z = (x - mean) / std
    onehot = np.eye(n_labels)[y]
    w = np.zeros((n_labels, x.shape[1]))
    b = np.zeros(n_labels)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    lr, momentum = 0.5, 0.9
    for _ in range(steps):
        error = (softmax(z @ w.T + b) - onehot) / len(z)
        vw = momentum * vw - lr * (error.T @ z + l2 * w)
        vb = momentum * vb - lr * error.sum(axis=0)
        w, b = w + vw, b + vb
    matrix = w / std
    return matrix, b - matrix @ mean


def folds_of(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number for every row, each label spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % k
    return fold


def threshold_for(ok_scores: np.ndarray, max_fp: float) -> float:
    """The lowest threshold flagging at most `max_fp` of the ok scores (flagged: score >= threshold)."""
    allowed = int(np.floor(max_fp * len(ok_scores)))
    ranked = np.sort(ok_scores)[::-1]
    return float(np.nextafter(ranked[allowed], 1.0))


def cross_validate(x, y, languages, args) -> tuple[float, dict]:
    fold = folds_of(y, args.folds, args.seed)
    probs = np.zeros((len(y), len(LABELS)))
    for k in range(args.folds):
        test = fold == k
        matrix, bias = fit(x[~test], y[~test], len(LABELS), args.l2, args.steps)
        probs[test] = softmax(x[test] @ matrix.T + bias)
    score = 1.0 - probs[:, 0]
    language = np.asarray(languages)
    threshold = max(threshold_for(score[(y == 0) & (language == lang)], args.max_fp) for lang in LANGUAGES)
    flagged = score >= threshold
    named = probs[:, 1:].argmax(axis=1) + 1
    figures = {}
    for language in LANGUAGES:
        mine = np.asarray(languages) == language
        ok, harmful = mine & (y == 0), mine & (y != 0)
        figures[language] = {
            "ok_flagged": round(float(flagged[ok].mean()), 4),
            "harmful_flagged": round(float(flagged[harmful].mean()), 4),
            "harmful_category_right": round(float((flagged & (named == y))[harmful].mean()), 4),
            "ok_items": int(ok.sum()),
            "harmful_items": int(harmful.sum()),
        }
    return threshold, figures


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-fp", type=float, default=0.03)
    parser.add_argument("--l2", type=float, default=0.001)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=shipped_weights())
    args = parser.parse_args()
    labels, texts, languages = read_training()
    embedder = open_embedder(Settings(n_threads=args.threads), progress=False)
    if embedder is None:
        raise SystemExit("no embedding model")
    try:
        x = embed_all(embedder, texts)
    finally:
        embedder.close()
    y = np.asarray([LABELS.index(label) for label in labels])
    threshold, figures = cross_validate(x, y, languages, args)
    matrix, bias = fit(x, y, len(LABELS), args.l2, args.steps)
    weights = {
        "labels": list(LABELS),
        "threshold": threshold,
        "embedding_model": embedder.info.name,
        "embedding_sha256": embedder.info.sha256,
        "training_sha256": {f"train_{lang}.tsv": sha256_of(DATA / f"train_{lang}.tsv") for lang in LANGUAGES},
        "training": {"folds": args.folds, "max_fp": args.max_fp, "l2": args.l2, "steps": args.steps, "seed": args.seed},
        "cross_validation": figures,
        "bias": [round(float(v), 6) for v in bias],
        "matrix": [[round(float(v), 6) for v in row] for row in matrix],
    }
    args.out.write_text(json.dumps(weights, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({"threshold": threshold, "cross_validation": figures}, indent=1))


if __name__ == "__main__":
    main()
