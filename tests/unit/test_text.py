import pytest

from mingyan.engine.text import StopMatcher, Utf8Stream


def test_chinese_split_across_byte_tokens_is_never_broken():
    data = "你好，世界".encode()
    stream = Utf8Stream()
    out = [stream.feed(data[i : i + 1]) for i in range(len(data))]
    assert "".join(out) + stream.flush() == "你好，世界"
    assert all("\ufffd" not in piece for piece in out)
    # a character is released only once complete
    assert out[:3] == ["", "", "你"]


def test_incomplete_character_at_end_is_dropped_and_invalid_bytes_replaced():
    stream = Utf8Stream()
    assert stream.feed("好".encode()[:2]) == ""
    assert stream.flush() == ""
    assert stream.feed(b"a\xffb") == "a\ufffdb"


@pytest.mark.parametrize(
    "pieces, stops, expected_text, stopped",
    [
        (["Hello", " wor", "ld"], ["world"], "Hello ", True),
        (["a<", "|e", "nd|>tail"], ["<|end|>"], "a", True),
        (["abc"], [], "abc", False),
        (["ab", "c", "d"], ["cx"], "abcd", False),
        (["你好", "。再见"], ["。"], "你好", True),
        (["xx", "STO", "P"], ["STOP", "TO"], "xxS", True),
    ],
)
def test_stop_matcher(pieces, stops, expected_text, stopped):
    matcher = StopMatcher(stops)
    emitted, hit = [], False
    for piece in pieces:
        text, hit = matcher.feed(piece)
        emitted.append(text)
        if hit:
            break
    if not hit:
        emitted.append(matcher.flush())
    assert "".join(emitted) == expected_text
    assert hit is stopped


def test_partial_stop_is_held_back_until_disproved():
    matcher = StopMatcher(["</answer>"])
    assert matcher.feed("ok </ans") == ("ok ", False)
    assert matcher.feed("wer") == ("", False)
    assert matcher.feed("!") == ("</answer!", False)
