"""Attribution: a reply's markers checked against the passages of its prompt (real jieba terms).
A marker whose passage supports its sentence is kept, a wrong one is corrected to the passage that
does, one with no support anywhere is removed, and a well-supported claim without a marker gets one."""

from __future__ import annotations

import pytest

from mingyan.documents.attribution import attribute
from mingyan.documents.citations import Passage
from mingyan.documents.numerals import arabic_numbers, chinese_value
from mingyan.documents.terms import Segmenter
from tests.doc_questions import ORION, TOWN

PAGES = [("town.pdf", i + 1, text) for i, text in enumerate(TOWN)] + [
    ("orion.docx", i + 1, page[0]) for i, page in enumerate(ORION)
]
PASSAGES = [Passage(n, f"f-{name}", name, page, 0, len(text), text) for n, (name, page, text) in enumerate(PAGES, 1)]


@pytest.fixture(scope="module")
def terms():
    return Segmenter().terms


CASES = [
    # A wrong marker is corrected; the next sentence is covered by it (same paragraph).
    (
        "[4] The chief engineer of Project Orion is Dr. Mira Castellanos.",
        "[6] The chief engineer of Project Orion is Dr. Mira Castellanos.",
    ),
    ("[6] First light is planned for March 2027.", "[6] First light is planned for March 2027."),  # kept
    ("The budget of Project Orion is 7.4 million euros.", "The budget of Project Orion is 7.4 million euros [4]."),
    ("[1] 青石镇的灯塔建于1897年。", "[2] 青石镇的灯塔建于1897年。"),  # 1897 is 一八九七 on page 2
    ("青石镇共有4200名居民。", "青石镇共有4200名居民[1]。"),  # 四千二百
    ("镇上的河流叫白鹭河【9】。", "镇上的河流叫白鹭河【3】。"),  # a marker naming no passage
    ("[1, 4] Its budget is 7.4 million euros.", "[4] Its budget is 7.4 million euros."),
    ("[3] I am not sure about that.", "I am not sure about that."),  # no support: removed
    ("Sorry, I cannot say [2].", "Sorry, I cannot say."),
    ("Use `x[1]` in the code.", "Use `x[1]` in the code."),  # code, not a marker
    ("[5]", ""),  # markers alone claim nothing
    (
        "The mirror has a diameter of 3.8 metres. [5]\n\n镇长名叫柳文杰。",
        "The mirror has a diameter of 3.8 metres. [5]\n\n镇长名叫柳文杰[1]。",
    ),
]


@pytest.mark.parametrize(("reply", "expected"), CASES)
def test_markers_are_kept_corrected_removed_or_added(terms, reply: str, expected: str) -> None:
    assert attribute(reply, PASSAGES, terms) == expected
    assert attribute(expected, PASSAGES, terms) == expected  # running it again changes nothing


def test_an_unmarked_sentence_after_a_citing_one_gets_no_second_marker(terms) -> None:
    reply = "[6] The chief engineer is Dr. Mira Castellanos. She leads Project Orion."
    assert attribute(reply, PASSAGES, terms) == reply


def test_a_reply_without_passages_is_left_alone(terms) -> None:
    assert attribute("[1] anything", [], terms) == "[1] anything"


@pytest.mark.parametrize(
    ("run", "value"),
    [("一八九七", 1897), ("四千二百", 4200), ("二十三", 23), ("十", 10), ("十五", 15), ("三万五千", 35000),
     ("一千零五", 1005), ("千万", None)],
)  # fmt: skip
def test_chinese_numerals(run: str, value: int | None) -> None:
    assert chinese_value(run) == value


def test_numbers_are_also_read_as_arabic_digits() -> None:
    assert arabic_numbers("建于一八九七年，共4,200人，十月") == {"1897", "4200", "10"}
