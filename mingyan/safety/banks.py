"""Keyword banks: one versioned data file per category, shipped in the package (`banks/*.txt`).

A bank file holds one phrase per line; `#` starts a comment, and a `# version: X` comment names the
bank's version. Administrators' edits are stored by the application and replace a shipped bank
(see `KeywordBank.edited`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from mingyan.safety.policy import CATEGORIES

_VERSION = re.compile(r"^#\s*version:\s*(\S+)", re.IGNORECASE)
MAX_PHRASE_CHARS = 100
MAX_PHRASES = 5000


@dataclass(frozen=True)
class KeywordBank:
    category: str
    version: str
    phrases: tuple[str, ...]

    def edited(self, phrases: list[str], version: str) -> KeywordBank:
        return KeywordBank(self.category, version, clean_phrases(phrases))


def clean_phrases(phrases: list[str]) -> tuple[str, ...]:
    """Stripped, non-empty, unique (first kept), each at most MAX_PHRASE_CHARS; ValueError otherwise."""
    seen: dict[str, None] = {}
    for phrase in phrases:
        phrase = phrase.strip()
        if len(phrase) > MAX_PHRASE_CHARS:
            raise ValueError(f"a phrase is longer than {MAX_PHRASE_CHARS} characters: {phrase[:40]}…")
        if phrase:
            seen.setdefault(phrase, None)
    if len(seen) > MAX_PHRASES:
        raise ValueError(f"a bank holds at most {MAX_PHRASES} phrases")
    return tuple(seen)


def parse_bank(category: str, text: str) -> KeywordBank:
    version, phrases = "0", []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            if found := _VERSION.match(line):
                version = found.group(1)
            continue
        phrases.append(line)
    return KeywordBank(category, version, clean_phrases(phrases))


def shipped_banks() -> dict[str, KeywordBank]:
    """The banks that come with mingyan, by category."""
    folder = resources.files("mingyan.safety") / "banks"
    return {c: parse_bank(c, (folder / f"{c}.txt").read_text(encoding="utf-8")) for c in CATEGORIES}
