"""Prompt-lookup drafts and the accept rule (engine/llamacpp/speculation.py), without a model."""

from __future__ import annotations

import random
from collections import Counter

from mingyan.engine.llamacpp.speculation import (
    FIRST_PAUSE,
    DraftControl,
    NgramIndex,
    Speculation,
    share,
    verify,
)


def test_a_repeated_ngram_proposes_what_followed_it_last_time():
    index = NgramIndex([1, 2, 3, 4, 5, 6, 9, 2, 3])
    assert index.propose(3) == [4, 5, 6]
    assert index.propose(1) == [4]
    assert index.propose(0) == []


def test_the_longest_suffix_wins_over_a_later_shorter_match():
    # (7, 2, 3) occurred followed by 8; (2, 3) occurred later followed by 4.
    index = NgramIndex([7, 2, 3, 8, 8, 2, 3, 4, 4, 7, 2, 3])
    assert index.propose(2) == [8, 8]


def test_the_latest_occurrence_of_an_ngram_is_used():
    index = NgramIndex([5, 6, 1, 0, 5, 6, 2, 0, 5, 6])
    assert index.propose(1) == [2]


def test_no_draft_without_a_repeated_ngram_of_two_tokens():
    assert NgramIndex([1, 2, 3, 4, 5]).propose(4) == []
    assert NgramIndex([1, 2, 1]).propose(4) == []  # one repeated token is not enough
    assert NgramIndex([]).propose(4) == []


def test_generated_tokens_extend_the_index():
    index = NgramIndex([10, 11, 12, 13])
    index.extend([10])
    assert index.propose(4) == []
    index.extend([11])
    assert index.propose(4) == [12, 13, 10, 11]  # a draft may run into the reply itself


def test_draft_length_grows_on_full_acceptance_and_shrinks_on_misses():
    control = DraftControl(max_draft=16, length=4)
    control.record(4, 4)
    assert control.size() == 8
    control.record(8, 8)
    control.record(16, 16)
    assert control.size() == 16  # capped
    control.record(16, 5)
    assert control.size() == 8


def test_a_stream_whose_drafts_fail_pauses_for_longer_each_time():
    control = DraftControl(max_draft=8)
    pauses = []
    for _ in range(3):
        while control.size() > 0:
            control.record(control.length, 0)
        steps = 1
        while control.size() == 0:
            steps += 1
        pauses.append(steps)
    assert pauses[0] == FIRST_PAUSE  # steps without a draft
    assert pauses[1] > pauses[0] and pauses[2] > pauses[1]
    assert control.drafted > 0 and control.accepted == 0


def test_speculation_never_drafts_past_the_room_left():
    spec = Speculation(NgramIndex([1, 2, 3, 4, 5, 6, 7, 1, 2]))
    assert spec.draft(3) == [3, 4, 5]
    assert spec.draft(0) == []


def markov(seed: int, vocab: int = 6):
    """A toy 'model': the next-token distribution depends on the last token."""
    rng = random.Random(seed)
    return [[rng.random() ** 3 for _ in range(vocab)] for _ in range(vocab)]


def generate(table, rng: random.Random, length: int, proposer=None) -> tuple[list[int], int]:
    """Decode `length` tokens one by one, or with drafts from `proposer` checked by `verify`;
    returns the tokens and how many drafted tokens were accepted."""
    out, accepted = [0], 0

    def drawer(run: list[int]):
        def draw(j: int) -> int:
            token = rng.choices(range(len(table)), weights=table[run[j]])[0]
            out.append(token)
            return token

        return draw

    while len(out) <= length:
        draft = proposer(out) if proposer else []
        accepted += verify(draft, drawer([out[-1], *draft]))
    return out[1 : length + 1], accepted


def test_drafts_checked_by_the_rule_give_exactly_the_tokens_of_plain_decoding():
    # Each draw is made in the same order with the same random numbers, accepted or not.
    table = markov(1)
    for seed in range(20):
        plain, _ = generate(table, random.Random(seed), 60)
        index_guess, accepted = generate(table, random.Random(seed), 60, lambda h: NgramIndex(h).propose(4))
        always_zero, _ = generate(table, random.Random(seed), 60, lambda h: [0, 0, 0])
        assert index_guess == plain and always_zero == plain
    assert accepted > 0


def test_the_first_token_after_a_fixed_draft_follows_the_model_distribution():
    table = markov(2)
    counts: Counter[int] = Counter()
    rng = random.Random(0)
    trials = 20000
    for _ in range(trials):
        tokens, _ = generate(table, rng, 2, lambda h: [3, 3])
        counts[tokens[0]] += 1
    weights = table[0]
    for token, weight in enumerate(weights):
        expected = weight / sum(weights)
        assert abs(counts[token] / trials - expected) < 0.015


def test_verify_stops_where_the_stream_ends_inside_an_accepted_draft():
    drawn = []

    def draw(j: int) -> int | None:
        drawn.append(j)
        return None if j == 2 else [5, 6, 7, 8][j]  # the stream ends on its third token

    assert verify([5, 6, 7, 8], draw) == 2
    assert drawn == [0, 1, 2]


def test_verify_takes_the_bonus_token_after_a_fully_accepted_draft():
    assert verify([5, 6], lambda j: [5, 6, 9][j]) == 2
    assert verify([], lambda j: 4) == 0
    assert verify([5, 6], lambda j: [4, 6, 9][j]) == 0


def test_streams_of_one_step_share_one_draft_length():
    assert share([[1, 2, 3, 4]], budget=32) == [[1, 2, 3, 4]]
    assert share([[1, 2, 3, 4], [5, 6], [7, 8, 9]], budget=32) == [[1, 2], [5, 6], [7, 8]]
    assert share([[1, 2, 3, 4], [], [7, 8, 9]], budget=32) == [[], [], []]  # one without: nobody drafts
    assert share([[1, 2, 3, 4], [5, 6, 7, 8]], budget=4) == [[1, 2], [5, 6]]
    assert share([[1, 2]], budget=0) == [[]]
    assert share([], budget=8) == []
