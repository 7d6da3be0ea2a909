"""The trained safety classifier: a prompt's embedding (the shipped e5 model, through the served
`Embedder`) scored by a multinomial logistic regression over the six categories and `ok`.

The weights (`classifier/weights.json`, written by bench/train_safety_classifier.py) were trained on
vectors of one exact embedding model: its sha256 is stored beside them and checked when the server
starts. A prompt is flagged when the probability that it is not `ok` reaches the stored threshold
(picked by cross-validation on the training set); it is then named by its likeliest category.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mingyan.engine.base import Embedder
from mingyan.errors import MingyanError

OK = "ok"
QUERY_PREFIX = "query: "  # what e5 models expect before a text that is searched for / classified
WINDOW_CHARS = 400  # a text is scored in windows this long (the e5 model reads at most 512 tokens)
MAX_WINDOWS = 16  # the last windows of a long prompt are scored, the rest not


def shipped_weights() -> Path:
    return Path(__file__).with_name("classifier") / "weights.json"


class ClassifierMismatch(MingyanError):
    """The weights were trained on another embedding model's vectors (or none is served)."""


@dataclass(frozen=True)
class ClassifierWeights:
    labels: tuple[str, ...]  # OK and the categories, in the rows' order
    matrix: np.ndarray  # (labels, dimensions)
    bias: np.ndarray  # (labels,)
    threshold: float  # flagged when 1 - p(ok) >= threshold
    embedding_model: str
    embedding_sha256: str

    @classmethod
    def load(cls, path: Path) -> ClassifierWeights:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            labels=tuple(data["labels"]),
            matrix=np.asarray(data["matrix"], dtype=np.float64),
            bias=np.asarray(data["bias"], dtype=np.float64),
            threshold=float(data["threshold"]),
            embedding_model=str(data["embedding_model"]),
            embedding_sha256=str(data["embedding_sha256"]),
        )

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Softmax over the labels, one row per vector."""
        return softmax(vectors @ self.matrix.T + self.bias)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Classified:
    category: str | None  # the likeliest category when flagged, else None
    probabilities: dict[str, float]  # of the highest-scoring window


def windows(texts: Sequence[str]) -> list[str]:
    """The windows of `texts` that are scored (empty texts have none)."""
    found = [
        QUERY_PREFIX + text[start : start + WINDOW_CHARS]
        for text in (t.strip() for t in texts)
        for start in range(0, len(text), WINDOW_CHARS)
    ]
    return found[-MAX_WINDOWS:]


class SafetyClassifier:
    def __init__(self, weights: ClassifierWeights, embedder: Embedder | None) -> None:
        if embedder is None:
            raise ClassifierMismatch(
                "--moderation-classifier needs the embedding model it was trained on "
                f"({weights.embedding_model}); --embedding-model is none. Serve it, or set "
                "--moderation-classifier off."
            )
        if embedder.info.sha256 != weights.embedding_sha256:
            raise ClassifierMismatch(
                f"the safety classifier's weights were trained on {weights.embedding_model} "
                f"(sha256 {weights.embedding_sha256[:12]}…), but the embedding model served is "
                f"{embedder.info.name} (sha256 {embedder.info.sha256[:12]}…). Serve that model, retrain "
                "(bench/train_safety_classifier.py) or set --moderation-classifier off."
            )
        self.weights = weights
        self.embedder = embedder

    def decide(self, probabilities: np.ndarray) -> Classified:
        """The verdict on the probability rows of one prompt's windows."""
        labels = self.weights.labels
        ok = labels.index(OK)
        worst = int(np.argmin(probabilities[:, ok]))
        row = probabilities[worst]
        scores = {label: float(p) for label, p in zip(labels, row, strict=True)}
        if 1.0 - row[ok] < self.weights.threshold:
            return Classified(None, scores)
        category = max((label for label in labels if label != OK), key=lambda label: scores[label])
        return Classified(category, scores)

    async def classify(self, texts: Sequence[str], user: str = "") -> Classified:
        """The verdict on a prompt (its texts), one embedding call for all its windows."""
        scored = windows(texts)
        if not scored:
            return Classified(None, {label: float(label == OK) for label in self.weights.labels})
        embedded = await self.embedder.embed(scored, user=user)
        return self.decide(self.weights.probabilities(np.asarray(embedded.vectors, dtype=np.float64)))
