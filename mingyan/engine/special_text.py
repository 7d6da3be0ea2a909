"""Control-token text found in one linear pass, and tokenization around it.

llama.cpp's special-token parsing splits the text at every control-token occurrence, and its cost
grows with the square of their number: a message made of 16,000 `<|im_end|>x` took 10 s, and a
chat of many tiny messages (two markers each) grew the same way. Here one compiled regex of the
vocabulary's control-token texts finds them all in a single pass; each becomes its token id, and
the text between them is tokenized by llama.cpp as plain text (which it does linearly), exactly as
llama.cpp tokenizes the fragments its own partition leaves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

CONTROL = 1 << 3  # llama_token_attr bits: LLAMA_TOKEN_ATTR_CONTROL
UNKNOWN = 1 << 0
STRIPPING = (1 << 8) | (1 << 9)  # LSTRIP, RSTRIP: they also eat neighbouring spaces


class SpecialText:
    """The texts of a vocabulary's control tokens (what `parse_special` turns into tokens)."""

    def __init__(self, tokens: Mapping[str, int]) -> None:
        self._ids = {text: token for text, token in tokens.items() if text}
        ordered = sorted(self._ids, key=len, reverse=True)  # the longest wins where two start alike
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def contains(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def split(self, text: str) -> Iterator[str | int]:
        """The text as plain pieces (str, non-empty) and control tokens (int), in order."""
        if self._pattern is None:
            if text:
                yield text
            return
        start = 0
        for match in self._pattern.finditer(text):
            if match.start() > start:
                yield text[start : match.start()]
            yield self._ids[match.group()]
            start = match.end()
        if start < len(text):
            yield text[start:]

    def tokenize(self, text: str, plain: Callable[[str], list[int]]) -> list[int]:
        """Tokens of `text` with control-token text as control tokens; `plain` tokenizes the rest."""
        tokens: list[int] = []
        for piece in self.split(text):
            if isinstance(piece, int):
                tokens.append(piece)
            else:
                tokens += plain(piece)
        return tokens


def read_special_text(n_vocab: int, attr: Callable[[int], int], text: Callable[[int], str]) -> SpecialText | None:
    """The vocabulary's control tokens; None when one of them strips neighbouring spaces (then
    llama.cpp's own parsing is used, as this one does not reproduce that)."""
    found: dict[str, int] = {}
    for token in range(n_vocab):
        flags = attr(token)
        if flags & (CONTROL | UNKNOWN):
            if flags & STRIPPING:
                return None
            found.setdefault(text(token), token)
    return SpecialText(found)
