"""The SentencePiece charsmap builder: every entry is found again by llama.cpp's lookup walk."""

from __future__ import annotations

import random

import pytest

from mingyan.models.charsmap import build_charsmap, lookup


def test_each_replacement_is_found_and_others_are_not() -> None:
    rng = random.Random(7)
    sources = rng.sample(range(0x20, 0x30000), 3000)
    table = [
        (chr(cp), "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(0, 3))))
        for cp in sources
        if not 0xD800 <= cp < 0xE000
    ]
    charsmap = build_charsmap(table)
    for source, target in table:
        assert lookup(charsmap, source.encode() + b"tail") == (len(source.encode()), target)
    absent = next(cp for cp in range(0x20, 0x30000) if cp not in set(sources) and not 0xD800 <= cp < 0xE000)
    assert lookup(charsmap, chr(absent).encode()) is None


def test_the_longest_matching_prefix_wins() -> None:
    charsmap = build_charsmap([("a", "1"), ("ab", "2"), ("abc", ""), ("b", "3")])
    assert lookup(charsmap, b"abx") == (2, "2")
    assert lookup(charsmap, b"abcd") == (3, "")
    assert lookup(charsmap, b"ax") == (1, "1")
    assert lookup(charsmap, b"bb") == (1, "3")
    assert lookup(charsmap, b"x") is None


def test_keys_must_be_non_empty_without_nul() -> None:
    with pytest.raises(ValueError):
        build_charsmap([("", "x")])
    with pytest.raises(ValueError):
        build_charsmap([("a\0", "x")])
