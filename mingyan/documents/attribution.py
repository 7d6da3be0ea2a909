"""Attribution: after a reply, check each of its claims against the passages its prompt held, and
make its [n] markers point at passages that support them. Small models state the fact but often
cite the wrong passage (they copy the number of the prompt's example); this step corrects that.

The reply is split into sentences (documents/chunking.py's rules; a sentence holding nothing but
markers belongs to the one before it). A sentence's terms are its BM25 terms (documents/terms.py:
jieba words, Latin words, numbers) plus its numbers read as Arabic digits (documents/numerals.py,
so 1897 matches 一八九七). Each term weighs its BM25 idf over the prompt's passages: a term every
passage holds (the topic's name) weighs little, a name or a number only one passage holds weighs
most; terms no passage holds (the model's own wording) are not counted. A passage's *support* for
a sentence is the share of the sentence's weight that the passage holds, from 0 to 1.

- A marker is kept when its passage's support is at least MIN_SUPPORT and at least KEEP_RATIO of
  the best passage's support.
- Otherwise it is corrected to the best passage (the highest support; ties go to the passage the
  model named, then to the lower number) when that passage's support is at least MIN_SUPPORT, and
  removed when no passage reaches it: nothing is cited for a claim the passages do not support.
  A marker naming no given passage is treated the same way, and so is a marker with no sentence
  at all (a reply of markers alone).
- A sentence without a marker gets one, for its best passage, when that support is at least
  ADD_SUPPORT and the passage holds a distinctive term of the sentence (one that at most a third of
  the passages hold), unless a passage an earlier sentence of the same paragraph cites supports it
  as well as a kept marker would (a citation covers the sentences after it).
  The marker goes before the sentence's closing punctuation.

The reply's text is rewritten accordingly, so the markers a reader sees are the citations stored.
Running it again on its own result changes nothing more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mingyan.documents.chunking import sentences
from mingyan.documents.citations import Marker, Passage, marker_text, markers
from mingyan.documents.numerals import arabic_numbers

MIN_SUPPORT = 0.4
KEEP_RATIO = 0.8
ADD_SUPPORT = 0.6
DISTINCTIVE_SHARE = 1 / 3

Terms = Callable[[str], list[str]]
_CLOSING = re.compile(r"[\s。！？；….!?;:：,，\"'”’」』）)]*$")
_WORDY = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class Support:
    share: float  # of the sentence's weight, 0..1
    weight: float  # the idf summed over the terms the passage holds
    distinctive: bool  # holds a term that at most a third of the passages hold


class _Passages:
    """The passages' term sets, and the support each gives a sentence."""

    def __init__(self, passages: Sequence[Passage], terms: Terms) -> None:
        self.sets = {p.marker: _term_set(p.text, terms) for p in passages}
        self.terms = terms

    def support(self, sentence: str) -> dict[int, Support]:
        words = _term_set(sentence, self.terms)
        n = len(self.sets)
        df = {w: sum(w in s for s in self.sets.values()) for w in words}
        idf = {w: math.log(1 + (n - d + 0.5) / (d + 0.5)) for w, d in df.items() if d}
        total = sum(idf.values())
        found = {}
        for number, held in self.sets.items():
            matched = [w for w in idf if w in held]
            weight = sum(idf[w] for w in matched)
            distinctive = any(df[w] <= max(1, n * DISTINCTIVE_SHARE) for w in matched)
            found[number] = Support(weight / total if total else 0.0, weight, distinctive)
        return found


def _term_set(text: str, terms: Terms) -> set[str]:
    return set(terms(text)) | arabic_numbers(text)


def attribute(reply: str, passages: Sequence[Passage], terms: Terms) -> str:
    """The reply with its markers kept, corrected, removed or added (see the module's text)."""
    if not passages or not reply.strip():
        return reply
    index = _Passages(passages, terms)
    found = markers(reply)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), in order
    cited_in_paragraph: set[int] = set()
    previous_end = 0
    claims = _claims(reply, found)
    for m in found:  # a marker with no claim at all (a reply of markers alone) cites nothing
        if not any(start <= m.start < end for start, end in claims):
            edits.append(_removal(reply, m, m.start, m.end))
    for start, end in claims:
        if "\n\n" in reply[previous_end:start]:
            cited_in_paragraph = set()
        previous_end = end
        own = [m for m in found if start <= m.start < end]
        plain = _without(reply, start, end, own)
        support = index.support(plain)
        best = _best(support, [n for m in own for n in m.numbers])
        if own:
            numbers = _corrected(reply, start, end, own, support, best, edits)
            cited_in_paragraph |= numbers
        elif best is not None and _addable(support[best]) and not _covered(support, best, cited_in_paragraph):
            edits.append(_insertion(reply, start, end, best))
            cited_in_paragraph.add(best)
    return _apply(reply, edits)


def _claims(reply: str, found: Sequence[Marker]) -> list[tuple[int, int]]:
    """Sentence spans; a span with nothing but markers and punctuation joins the one before it
    (or, at the start, the one after it)."""
    spans: list[tuple[int, int]] = []
    pending: int | None = None
    for start, end in sentences(reply):
        own = [m for m in found if start <= m.start < end]
        if not _WORDY.search(_without(reply, start, end, own)):
            if spans:
                spans[-1] = (spans[-1][0], end)
            elif pending is None:
                pending = start
            continue
        spans.append((pending if pending is not None else start, end))
        pending = None
    return spans


def _without(reply: str, start: int, end: int, own: Sequence[Marker]) -> str:
    """The span's text with its markers left out."""
    parts, at = [], start
    for m in own:
        parts.append(reply[at : m.start])
        at = m.end
    parts.append(reply[at:end])
    return " ".join(parts)


def _best(support: dict[int, Support], named: Sequence[int]) -> int | None:
    """The best-supporting passage: highest share, then weight, then one the model named, then the lowest number."""
    if not support:
        return None
    return min(support, key=lambda n: (-support[n].share, -support[n].weight, n not in named, n))


def _corrected(
    reply: str,
    start: int,
    end: int,
    own: Sequence[Marker],
    support: dict[int, Support],
    best: int | None,
    edits: list[tuple[int, int, str]],
) -> set[int]:
    """Edits for the sentence's markers; the passage numbers it cites afterwards."""
    top = support[best].share if best is not None else 0.0
    placed: list[int] = []
    for m in own:
        numbers: list[int] = []
        for n in m.numbers:
            if _supports(support.get(n), top):
                chosen: int | None = n
            else:
                chosen = best if best is not None and top >= MIN_SUPPORT else None
            if chosen is not None and chosen not in placed:
                numbers.append(chosen)
                placed.append(chosen)
        if numbers:
            replacement = marker_text(numbers, m.bracket)
            if replacement != reply[m.start : m.end]:
                edits.append((m.start, m.end, replacement))
        else:
            edits.append(_removal(reply, m, start, end))
    return set(placed)


def _removal(reply: str, m: Marker, start: int, end: int) -> tuple[int, int, str]:
    """Remove a marker with one space beside it (the one after it at a sentence's start, else before)."""
    if m.start == start and m.end < end and reply[m.end] == " ":
        return m.start, m.end + 1, ""
    if m.start > 0 and reply[m.start - 1] == " ":
        return m.start - 1, m.end, ""
    return m.start, m.end, ""


def _insertion(reply: str, start: int, end: int, number: int) -> tuple[int, int, str]:
    """A marker before the sentence's closing punctuation (after a space in Latin text)."""
    closing = _CLOSING.search(reply, start, end)
    at = closing.start() if closing is not None else end
    gap = " " if reply[at - 1].isascii() and reply[at - 1].isalnum() else ""
    return at, at, f"{gap}[{number}]"


def _addable(s: Support) -> bool:
    return s.share >= ADD_SUPPORT and s.distinctive


def _covered(support: dict[int, Support], best: int, cited: set[int]) -> bool:
    """A passage the paragraph already cites supports the sentence as a kept marker would."""
    return any(_supports(support.get(n), support[best].share) for n in cited)


def _supports(s: Support | None, top: float) -> bool:
    return s is not None and s.share >= MIN_SUPPORT and s.share >= KEEP_RATIO * top


def _apply(reply: str, edits: list[tuple[int, int, str]]) -> str:
    parts, at = [], 0
    for start, end, replacement in sorted(edits):
        parts.append(reply[at:start])
        parts.append(replacement)
        at = max(at, end)
    parts.append(reply[at:])
    return "".join(parts)
