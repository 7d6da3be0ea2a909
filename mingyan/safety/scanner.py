"""Incremental matching of a text that arrives in pieces (a streamed reply): each piece is
normalised and matched together with just enough of the text before it to complete a phrase, so
the whole reply is checked in linear time. The scanner also says where a phrase may be starting
(the normalised tail is the beginning of some bank phrase): text from there on must be held back."""

from __future__ import annotations

from mingyan.safety.moderator import Hit, Moderator


class TextScanner:
    def __init__(self, moderator: Moderator) -> None:
        self.moderator = moderator
        self._tail = ""  # the last (longest phrase - 1) normalised characters seen
        self._tail_at: list[int] = []  # offset in the whole raw text of each character of the tail
        self.length = 0  # raw characters fed so far

    def feed(self, piece: str) -> list[Hit]:
        """The matches that end inside `piece`."""
        normalized = self.moderator.normalizer.normalize(piece)
        start = self.length
        self.length += len(piece)
        if not normalized.text:
            return []
        text = self._tail + normalized.text
        at = self._tail_at + [start + offset for offset in normalized.offsets]
        before = len(self._tail)
        hits = [hit for hit in self.moderator.hits(text) if hit.end > before]
        keep = max(0, self.moderator.longest_phrase - 1)
        self._tail, self._tail_at = (text[-keep:], at[-keep:]) if keep else ("", [])
        return hits

    def safe_length(self) -> int:
        """Raw characters that can be released: all of them, unless the text ends with the beginning
        of a bank phrase, which is held from where it starts."""
        for index in range(len(self._tail)):
            if self.moderator.starts_phrase(self._tail[index:]):
                return self._tail_at[index]
        return self.length
