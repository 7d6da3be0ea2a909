"""Numbers written in Chinese (一八九七, 四千二百, 二十三) or with thousands separators (4,200), also as
plain Arabic numbers (1897, 4200, 23), so that a reply saying 1897 matches a page saying 一八九七.
Used by attribution to compare a reply's claims with passages; not by the BM25 index."""

from __future__ import annotations

import re

_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
_CHINESE_RUN = re.compile("[〇零一二两三四五六七八九十百千万亿]{2,}|十")  # 十月 → 10
_SEPARATED = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")


def chinese_value(run: str) -> int | None:
    """The value of a run of Chinese numerals: digit by digit (一八九七 → 1897) when it has no unit
    characters, else positional (四千二百 → 4200, 十五 → 15, 三万五千 → 35000). None for a run
    of units alone (千万 as in 千万不要), except 十 (10)."""
    if run[0] != "十" and not any(c in _DIGITS for c in run):
        return None
    if not any(c in _UNITS or c in _BIG for c in run):
        return int("".join(str(_DIGITS[c]) for c in run))
    total = section = 0
    digit: int | None = None
    for c in run:
        if c in _DIGITS:
            digit = _DIGITS[c]
        elif c in _UNITS:
            section += (1 if digit is None else digit) * _UNITS[c]
            digit = None
        else:
            total = (total + section + (digit or 0)) * _BIG[c]
            section, digit = 0, None
    return total + section + (digit or 0)


def arabic_numbers(text: str) -> set[str]:
    """The numbers of `text` that are written in Chinese or with thousands separators, as Arabic digits."""
    found = {m.group().replace(",", "") for m in _SEPARATED.finditer(text)}
    for match in _CHINESE_RUN.finditer(text):
        value = chinese_value(match.group())
        if value is not None:
            found.add(str(value))
    return found
