"""Build a SentencePiece "precompiled charsmap": the normalization table a Unigram tokenizer carries.

GGUF key `tokenizer.ggml.precompiled_charsmap` holds it, and llama.cpp's Unigram (UGM) tokenizer
applies it before splitting text into pieces (NFKC-style folding: `，` → `,`, `？` → `?`, control
characters dropped). Its layout, as SentencePiece writes it and llama.cpp reads it:

    u32 size of the trie in bytes | the trie: u32 units | replacement strings, each NUL-terminated

The trie is a darts-clone double array with XOR-compressed offsets, keyed by the UTF-8 bytes of
the text to replace. From node `s`, the child for byte `c` is unit `s ^ offset(s) ^ c`; a unit
holds its own label in bits 0-7 (`c`; bit 31 is set only on value units, so a value never
matches a label), "has a value" in bit 8, and `offset` in bits 10-31. A node's value sits at its
child position for label 0 and holds the byte offset of its replacement string.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

_VALUE_FLAG = 1 << 31
_MAX_OFFSET = 1 << 21  # larger offsets need darts-clone's extended encoding, never needed here


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def _trie(entries: Iterable[tuple[bytes, int]]) -> _Node:
    root = _Node()
    for key, value in entries:
        if not key or 0 in key:
            raise ValueError(f"charsmap key {key!r} is empty or holds a NUL byte")
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value
    return root


class _Units:
    """The growing unit array with a free-slot scan."""

    def __init__(self) -> None:
        self.units = [0]
        self.used = bytearray(b"\x01")  # the root lives at 0
        self.first_free = 1

    def place(self, labels: list[int]) -> int:
        """A block position `p` whose slots `p ^ label` are all free (never slot 0); marks them."""
        p = self.first_free ^ labels[0]
        while True:
            slots = [p ^ label for label in labels]
            if all(slot != 0 and not self._taken(slot) for slot in slots):
                break
            p += 1
        for slot in slots:
            self._grow(slot)
            self.used[slot] = 1
        while self._taken(self.first_free):
            self.first_free += 1
        return p

    def _taken(self, slot: int) -> bool:
        return slot < len(self.used) and bool(self.used[slot])

    def _grow(self, slot: int) -> None:
        if slot >= len(self.units):
            extra = slot + 1 - len(self.units)
            self.units.extend([0] * extra)
            self.used.extend(bytes(extra))


def _double_array(root: _Node) -> list[int]:
    units = _Units()
    pending: list[tuple[int, _Node]] = [(0, root)]
    while pending:
        index, node = pending.pop(0)
        labels = sorted(node.children) + ([0] if node.value is not None else [])
        if not labels:
            continue
        labels.sort()
        block = units.place(labels)
        offset = index ^ block
        if offset >= _MAX_OFFSET:
            raise ValueError("charsmap trie too large for the compact offset encoding")
        units.units[index] |= offset << 10 | (1 << 8 if node.value is not None else 0)
        if node.value is not None:
            units.units[block] = node.value | _VALUE_FLAG
        for label, child in sorted(node.children.items()):
            units.units[block ^ label] = label
            pending.append((block ^ label, child))
    return units.units


def build_charsmap(replacements: Iterable[tuple[str, str]]) -> bytes:
    """The precompiled charsmap replacing each `source` text by its `target` (which may be empty)."""
    strings = bytearray()
    where: dict[str, int] = {}
    entries: list[tuple[bytes, int]] = []
    for source, target in replacements:
        if target not in where:
            where[target] = len(strings)
            strings += target.encode("utf-8") + b"\x00"
        entries.append((source.encode("utf-8"), where[target]))
    units = _double_array(_trie(entries))
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def lookup(charsmap: bytes, text: bytes) -> tuple[int, str] | None:
    """The longest prefix of `text` the charsmap replaces: (its length, the replacement); None if none.

    Walks the trie the way llama.cpp does; used to check a built charsmap.
    """
    (size,) = struct.unpack_from("<I", charsmap, 0)
    units = struct.unpack_from(f"<{size // 4}I", charsmap, 4)
    strings = charsmap[4 + size :]

    def offset(i: int) -> int:
        return (units[i] >> 10) << ((units[i] & (1 << 9)) >> 6)

    found: tuple[int, str] | None = None
    node = offset(0)
    for length, byte in enumerate(text, start=1):
        node ^= byte
        if node >= len(units) or units[node] & (_VALUE_FLAG | 0xFF) != byte:
            break
        has_value = (units[node] >> 8) & 1
        node ^= offset(node)
        if has_value:
            start = units[node] & (_VALUE_FLAG - 1)
            found = (length, strings[start : strings.index(0, start)].decode("utf-8"))
    return found
