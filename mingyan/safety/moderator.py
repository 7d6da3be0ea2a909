"""The moderator: normalised text matched against every keyword bank at once (Aho–Corasick, linear
in the text), judged by the deployment's policy."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import ahocorasick

from mingyan.safety.banks import KeywordBank, shipped_banks
from mingyan.safety.normalize import Normalizer
from mingyan.safety.policy import CATEGORIES, Policy


@dataclass(frozen=True)
class Hit:
    category: str
    phrase: str  # the bank's phrase, normalised
    end: int  # index in the normalised text just past the match


@dataclass(frozen=True)
class Verdict:
    flagged: bool  # some checked category matched
    categories: dict[str, bool]
    scores: dict[str, float]  # 1.0 for a matched category (keyword matching has no degrees), else 0.0
    blocked: tuple[str, ...] = ()  # matched categories whose action is `block`
    hits: tuple[Hit, ...] = field(default=(), repr=False)

    @property
    def category(self) -> str | None:
        """The category to name in a refusal: the first blocked one, else the first matched one."""
        if self.blocked:
            return self.blocked[0]
        return next((c for c, hit in self.categories.items() if hit), None)


class _Automaton:
    """All banks' normalised phrases in one Aho–Corasick automaton (immutable once built)."""

    def __init__(self, banks: Mapping[str, KeywordBank], normalizer: Normalizer) -> None:
        self.automaton = ahocorasick.Automaton()
        found: dict[str, set[str]] = {}
        for bank in banks.values():
            for phrase in bank.phrases:
                if key := normalizer.key(phrase):
                    found.setdefault(key, set()).add(bank.category)
        for key, categories in found.items():
            self.automaton.add_word(key, (key, tuple(sorted(categories))))
        self.longest = max((len(k) for k in found), default=0)
        if found:
            self.automaton.make_automaton()

    def starts_phrase(self, text: str) -> bool:
        """Whether `text` (normalised) is the beginning of some phrase (or a whole one)."""
        return bool(self.longest) and self.automaton.longest_prefix(text) == len(text)

    def hits(self, text: str) -> list[Hit]:
        if not self.longest or not text:
            return []
        found = self.automaton.iter(text)
        return [Hit(category, key, end + 1) for end, (key, categories) in found for category in categories]


class Moderator:
    def __init__(
        self,
        policy: Policy,
        banks: Mapping[str, KeywordBank] | None = None,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.policy = policy
        self.normalizer = normalizer or Normalizer()
        self.banks: dict[str, KeywordBank] = dict(banks if banks is not None else shipped_banks())
        self._automaton = _Automaton(self.banks, self.normalizer)
        self._edits = threading.Lock()  # an edit here and one polled from the database, one at a time

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    @property
    def longest_phrase(self) -> int:
        """Characters in the longest normalised phrase."""
        return self._automaton.longest

    def replace_bank(self, bank: KeywordBank) -> None:
        """Use `bank` for its category from now on (an administrator's edit). Thread-safe."""
        with self._edits:
            banks = {**self.banks, bank.category: bank}
            automaton = _Automaton(banks, self.normalizer)
            self._automaton, self.banks = automaton, banks  # the checks in flight keep the old one

    def starts_phrase(self, normalized: str) -> bool:
        """Whether normalised text is the beginning of some bank phrase."""
        return self._automaton.starts_phrase(normalized)

    def hits(self, normalized: str) -> list[Hit]:
        """Matches in already-normalised text, in checked categories only."""
        checked = set(self.policy.checked)
        return [hit for hit in self._automaton.hits(normalized) if hit.category in checked]

    def check(self, text: str) -> Verdict:
        if not self.enabled:
            return self.verdict([])
        return self.verdict(self.hits(self.normalizer.key(text)))

    def verdict(self, hits: list[Hit]) -> Verdict:
        matched = {hit.category for hit in hits}
        categories = {c: c in matched for c in CATEGORIES}
        blocked = tuple(c for c in CATEGORIES if c in matched and self.policy.action(c) == "block")
        return Verdict(
            flagged=bool(matched),
            categories=categories,
            scores={c: 1.0 if hit else 0.0 for c, hit in categories.items()},
            blocked=blocked,
            hits=tuple(hits),
        )
