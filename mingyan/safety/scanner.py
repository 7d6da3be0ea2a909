"""Incremental matching of a text that arrives in pieces (a streamed reply): each piece is
normalised and matched together with just enough of the text before it to complete a phrase, so
the whole reply is checked in linear time."""

from __future__ import annotations

from mingyan.safety.moderator import Hit, Moderator


class TextScanner:
    def __init__(self, moderator: Moderator) -> None:
        self.moderator = moderator
        self._tail = ""  # the last (longest phrase - 1) normalised characters seen

    def feed(self, piece: str) -> list[Hit]:
        """The matches that end inside `piece`."""
        added = self.moderator.normalizer.key(piece)
        if not added:
            return []
        text = self._tail + added
        before = len(self._tail)
        hits = [hit for hit in self.moderator.hits(text) if hit.end > before]
        keep = max(0, self.moderator.longest_phrase - 1)
        self._tail = text[-keep:] if keep else ""
        return hits
