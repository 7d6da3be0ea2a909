"""Terms for BM25: Chinese segmented with jieba (its default dictionary, search mode, so 低头思故乡
yields 低头 and 故乡), Latin words and numbers lowercased, punctuation and a few function words left
out. The jieba tokenizer is built on first use (about a second) and kept by its `Segmenter`."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import unicodedata
from pathlib import Path

import jieba

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_LATIN = re.compile(r"[^\W_]+(?:[.'’][^\W_]+)*", re.UNICODE)
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 就 都 而 之 其 这 那 个 着 把 被 让 我 你 他 她 它 们 有 吗 呢 吧 啊 "
    "a an the of to in on at by for and or is are was were be been it its this that with as from "
    "what which who how when where does do did".split()
)


class Segmenter:
    """Text → BM25 terms. Thread-safe; one per service."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._cache_dir = cache_dir
        self._jieba: jieba.Tokenizer | None = None
        self._lock = threading.Lock()

    def _tokenizer(self) -> jieba.Tokenizer:
        with self._lock:
            if self._jieba is None:
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.tmp_dir = str(self._cache_dir or tempfile.gettempdir())
                tokenizer.initialize()
                self._jieba = tokenizer
            return self._jieba

    def terms(self, text: str) -> list[str]:
        """Every term of `text`, in order (repeats kept: BM25 counts them)."""
        text = unicodedata.normalize("NFKC", text).lower()
        found: list[str] = []
        position = 0
        for run in _CJK_RUN.finditer(text):
            found.extend(_latin(text[position : run.start()]))
            found.extend(w for w in self._tokenizer().cut_for_search(run.group()) if w not in STOPWORDS)
            position = run.end()
        found.extend(_latin(text[position:]))
        return found


def _latin(text: str) -> list[str]:
    return [word for word in _LATIN.findall(text) if word not in STOPWORDS]
