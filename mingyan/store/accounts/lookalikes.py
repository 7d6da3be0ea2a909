"""Look-alike usernames: a username's confusables skeleton, after Unicode's UTS #39.

`admin`, `аdmin` (Cyrillic а), `admın` (dotless ı) and `adrnin` have one skeleton, so a new name
whose skeleton is an existing user's is refused: nobody can pass for someone else by a letter from
another script. The data is Unicode's confusables.txt as the `confusable-homoglyphs` package ships
it (`confusables.json`, read as data): each character that looks like another, with its prototype
(one or more characters). As in UTS #39, skeleton(X) = NFD(each character of NFD(X) replaced by its
prototype); here X is the username's compared form (NFKC casefold), the result is case-folded too,
and this repeats until nothing changes (`0` → `O` → `o`).
"""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict
from functools import cached_property
from importlib import resources

from mingyan.store.accounts.credentials import username_key

DATA_PACKAGE, DATA_FILE = "confusable_homoglyphs", "confusables.json"
MAX_ROUNDS = 4
LRM = "\u200e"  # the data wraps right-to-left characters in marks


def load_prototypes() -> dict[str, str]:
    """Every confusable character and the prototype it stands for."""
    raw = json.loads(resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text("utf-8"))
    return prototypes({k.replace(LRM, ""): [e["c"].replace(LRM, "") for e in v] for k, v in raw.items()})


def prototypes(pairs: dict[str, list[str]]) -> dict[str, str]:
    """From the data's two-way lists (a source lists its prototype, a prototype lists its sources):
    a map from each single character to its prototype. A source's prototype of several characters
    is known by its length; among single characters, a prototype is the centre its sources share
    (a pair of two is one class either way: the ASCII one, else the smaller, stands for it)."""
    result: dict[str, str] = {}
    neighbours: dict[str, set[str]] = defaultdict(set)
    for char, others in pairs.items():
        if len(char) != 1:
            continue
        for other in others:
            if len(other) > 1:
                result[char] = other
            elif other and other != char:
                neighbours[char].add(other)
                neighbours[other].add(char)
    for char, linked in neighbours.items():
        if char in result:
            continue
        centre = next((c for c in linked if len(neighbours[c]) > 1), None)
        if centre is not None:
            result[char] = centre
        elif len(linked) == 1 and len(linked) == 1:
            result[char] = min((char, *linked), key=lambda c: (not c.isascii(), c))
    return {char: proto for char, proto in result.items() if char != proto}


class Skeletons:
    """skeleton(username); the table is read on first use (pass one for tests of the rules)."""

    def __init__(self, table: dict[str, str] | None = None) -> None:
        self._given = table

    @cached_property
    def table(self) -> dict[str, str]:
        return self._given if self._given is not None else load_prototypes()

    def __call__(self, username: str) -> str:
        text = username_key(username)
        for _ in range(MAX_ROUNDS):
            decomposed = unicodedata.normalize("NFD", text)
            mapped = "".join(self.table.get(char, char) for char in decomposed)
            following = unicodedata.normalize("NFD", mapped).casefold()
            if following == text:
                break
            text = following
        return text
