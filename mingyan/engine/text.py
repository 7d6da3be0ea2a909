"""Turning token bytes into text safely: UTF-8 reassembly and stop strings.

Byte-level BPE models emit one Chinese character as two or three byte tokens, so text
is decoded incrementally and an incomplete character is held until its last byte comes;
invalid bytes in the middle become U+FFFD.
Stop strings are matched across token boundaries, and any tail of the output that could
still grow into a stop string is held back, so a client never sees part of one.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class Utf8Stream:
    """Feed token bytes, get only complete characters back."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, piece: bytes) -> str:
        return self._decoder.decode(piece)

    def flush(self) -> str:
        """End of stream: an incomplete trailing character (cut by max_tokens) is dropped."""
        self._decoder.reset()
        return ""


class StopMatcher:
    """Finds the first stop string in a stream of text without leaking partial matches."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit now, whether a stop string was reached)."""
        buffer = self._held + text
        if not self._stops:
            self._held = ""
            return buffer, False
        cut = min((i for i in (buffer.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._held = ""
            return buffer[:cut], True
        hold = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - hold :]
        return buffer[: len(buffer) - hold], False

    def flush(self) -> str:
        """Release held text at the end of a stream that ended without a stop."""
        held, self._held = self._held, ""
        return held

    def _partial_suffix(self, buffer: str) -> int:
        """Length of the longest tail of `buffer` that begins some stop string."""
        best = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:k]):
                    best = k
                    break
        return best
