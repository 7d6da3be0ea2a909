"""Prompt-lookup (n-gram) speculative decoding: drafts taken from the text so far, and the rule
that checks them without changing what the model would have said.

A reply that quotes or edits earlier text (a file returned with a rename, a corrected passage,
a summary with names) repeats long runs of the prompt. When the last few tokens of the stream
occurred before, the tokens that followed them then are a cheap guess of what comes next. The
guess (the draft) is evaluated in the same `llama_decode` as everything else, with logits at
each of its positions; the target model's token is then drawn at each position in turn and the
draft is kept while the drawn token equals the drafted one. The first differing draw is itself
a valid draw from the model (its prefix was accepted), so every step yields at least one token,
and the stream is exactly what one-token-at-a-time decoding would have produced: the same text
for greedy decoding, the same distribution (and the same random draws) for sampling. The draft
is deterministic given the history, so accepting a drafted token with probability
p_target(token) — which is what "draw, and keep while equal" does — leaves the distribution
unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

NGRAM_MIN = 2  # a single repeated token is too weak a hint
NGRAM_MAX = 4
FIRST_DRAFT = 8
MIN_DRAFT = 2
LOW_ACCEPTANCE = 0.3  # below this (moving average), a stream stops drafting for a while
FIRST_PAUSE = 16  # steps without drafts after a run of low acceptance; doubles each time
MAX_PAUSE = 512


class NgramIndex:
    """A token history and, for each n-gram of it (NGRAM_MIN..NGRAM_MAX tokens), where the token
    after its latest occurrence is."""

    def __init__(self, tokens: Sequence[int] = ()) -> None:
        self.history: list[int] = []
        self._after: dict[tuple[int, ...], int] = {}  # n-gram -> index of the token that followed it
        self._indexed = 0  # n-grams ending before this position are indexed
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        history, after = self.history, self._after
        history.extend(tokens)
        for end in range(self._indexed, len(history)):  # n-gram history[end-n:end], followed by history[end]
            for n in range(NGRAM_MIN, min(NGRAM_MAX, end) + 1):
                after[tuple(history[end - n : end])] = end
        self._indexed = len(history)  # the n-grams ending at the very end have no follower yet

    def propose(self, limit: int) -> list[int]:
        """Up to `limit` tokens that followed the latest earlier occurrence of the longest
        suffix (NGRAM_MAX down to NGRAM_MIN tokens) of the history; [] when none occurred."""
        history = self.history
        if limit <= 0:
            return []
        for n in range(min(NGRAM_MAX, len(history)), NGRAM_MIN - 1, -1):
            start = self._after.get(tuple(history[-n:]))
            if start is not None:
                return history[start : start + limit]
        return []


@dataclass
class DraftControl:
    """How long a stream's drafts are, and whether it drafts at all: the length doubles while
    drafts are accepted whole and halves when they are not; a stream whose acceptance stays low
    pauses (for longer each time), so text that does not repeat costs next to nothing."""

    max_draft: int = 16
    length: int = FIRST_DRAFT
    rate: float = 1.0  # moving average of the accepted share of each draft
    pause: int = 0  # steps left without drafting
    next_pause: int = FIRST_PAUSE
    drafted: int = 0
    accepted: int = 0

    def size(self) -> int:
        """Draft length for this step (0: do not draft now)."""
        if self.pause > 0:
            self.pause -= 1
            return 0
        return min(self.length, self.max_draft)

    def record(self, drafted: int, accepted: int) -> None:
        if drafted <= 0:
            return
        self.drafted += drafted
        self.accepted += accepted
        self.rate = 0.7 * self.rate + 0.3 * (accepted / drafted)
        self.length = min(self.max_draft, 2 * self.length) if accepted == drafted else max(MIN_DRAFT, self.length // 2)
        if self.rate < LOW_ACCEPTANCE:
            self.pause, self.next_pause = self.next_pause, min(MAX_PAUSE, 2 * self.next_pause)
            self.rate = 0.5  # a fresh, cautious start after the pause
        elif accepted == drafted:
            self.next_pause = FIRST_PAUSE


@dataclass
class Speculation:
    """One stream's drafting state: its history index and the control of each drafting source."""

    index: NgramIndex
    control: DraftControl = field(default_factory=DraftControl)
    model: DraftControl | None = None  # the draft model's control, when one drafts (draft_model.py)

    def draft(self, room: int) -> list[int]:
        """The draft for this step: at most `room` tokens (what the stream may still emit)."""
        size = min(room, self.control.size()) if room > 0 else 0
        return self.index.propose(size) if size > 0 else []


def share(drafts: list[list[int]], budget: int) -> list[list[int]]:
    """The drafts the streams of one step may verify, cut to one common length.

    llama.cpp evaluates the sequences of a batch in sub-batches holding the same number of
    tokens of each (its non-unified KV cache splits "equally"), so a draft longer than the
    others' would cost everyone an extra pass over the weights. With several streams, all get
    the length of the shortest draft (none when one of them has no draft), and the drafts of a
    step hold at most `budget` tokens together.
    """
    if not drafts:
        return []
    size = min(len(d) for d in drafts) if len(drafts) > 1 else len(drafts[0])
    size = min(size, max(0, budget) // len(drafts))
    return [d[:size] for d in drafts]


def verify(draft: Sequence[int], draw: Callable[[int], int | None]) -> int:
    """Check `draft` against the target model, position by position.

    `draw(j)` draws the target's token at position j of the run (after the first j drafted
    tokens), passes it on to the stream and returns it, or None when the stream ended with it.
    Draws go on while each equals the drafted token; the last draw (the first that differs, or
    the one after a fully accepted draft) is the stream's next token. Returns the number of
    drafted tokens accepted into the sequence.
    """
    for j in range(len(draft) + 1):
        token = draw(j)
        if token is None or j == len(draft) or token != draft[j]:
            return j
    return len(draft)  # not reached: the loop returns at j == len(draft)
