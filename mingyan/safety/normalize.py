"""Text normalisation before matching, so trivial disguises do not hide a phrase.

Steps, per character: NFKC (full width → half width, compatibility forms), case folding, traditional
→ simplified Chinese (OpenCC `t2s`), then only letters and digits are kept (spaces, punctuation,
symbols, zero-width and other format characters, combining marks are dropped). Every kept character
remembers the offset of the original character it came from, so a match maps back to the input.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cached_property

import opencc

_KEPT = ("L", "N")  # Unicode major categories kept: letters and numbers


@dataclass(frozen=True)
class Normalized:
    text: str  # the normalised text
    offsets: tuple[int, ...]  # offsets[i]: index in the original text of text[i]


class Normalizer:
    """Builds its OpenCC converter on first use (nothing at import time); thread-safe to call."""

    @cached_property
    def _t2s(self) -> opencc.OpenCC:
        return opencc.OpenCC("t2s")

    def simplified(self, text: str) -> str:
        """Traditional → simplified, one character for one (phrase conversions that change the length
        are done character by character instead)."""
        converted = self._t2s.convert(text)
        if len(converted) == len(text):
            return converted
        return "".join(c if len(c := self._t2s.convert(ch)) == 1 else ch for ch in text)

    def normalize(self, text: str) -> Normalized:
        chars: list[str] = []
        offsets: list[int] = []
        for index, ch in enumerate(text):
            for out in unicodedata.normalize("NFKC", ch).casefold():
                if unicodedata.category(out)[0] in _KEPT:
                    chars.append(out)
                    offsets.append(index)
        folded = self.simplified("".join(chars)) if chars else ""
        return Normalized(folded, tuple(offsets))

    def key(self, text: str) -> str:
        """The normalised form alone (how bank phrases are stored)."""
        return self.normalize(text).text
