"""logit_bias and logprobs with the official openai client against the real SmolLM2 server
(issue 19, item 9): fields that were accepted and ignored now work, or are refused with a 400."""

from __future__ import annotations

import math

import openai
import pytest

from mingyan.bootstrap import open_registry
from mingyan.config import Settings
from mingyan.engine.llamacpp.native import NativeModel
from tests.conftest import SMOLLM

ASK = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def vocab():
    model = NativeModel(open_registry(Settings(), progress=False).resolve(SMOLLM).path)
    yield model
    model.free()


def first_token(vocab, text: str) -> int:
    return vocab.tokenize(text, add_bos=False, parse_special=False)[0]


def test_a_bias_of_plus_100_forces_a_token(client, vocab):
    token = first_token(vocab, " zebra")
    piece = vocab.piece(token).decode()
    answer = client.chat.completions.create(
        model=SMOLLM,
        messages=ASK,
        temperature=0,
        max_tokens=3,
        logit_bias={str(token): 100},
        logprobs=True,
    )
    assert [t.token for t in answer.choices[0].logprobs.content] == [piece] * 3
    assert answer.choices[0].message.content == piece * 3


def test_a_bias_of_minus_100_bans_a_token(client, vocab):
    plain = client.chat.completions.create(model=SMOLLM, messages=ASK, temperature=0, max_tokens=4, logprobs=True)
    first = plain.choices[0].logprobs.content[0]
    banned = first_token(vocab, bytes(first.bytes).decode())
    assert vocab.piece(banned) == bytes(first.bytes)
    again = client.chat.completions.create(
        model=SMOLLM,
        messages=ASK,
        temperature=0,
        max_tokens=4,
        logprobs=True,
        logit_bias={str(banned): -100},
    )
    assert all(bytes(t.bytes) != bytes(first.bytes) for t in again.choices[0].logprobs.content)


def check_entry(entry, top: int) -> None:
    assert entry.logprob <= 0
    values = [t.logprob for t in entry.top_logprobs]
    assert len(values) == top and values == sorted(values, reverse=True)
    assert sum(math.exp(v) for v in values) <= 1.0001
    assert bytes(entry.bytes).decode("utf-8", "replace") == entry.token


def test_chat_logprobs_in_openais_shape(client):
    answer = client.chat.completions.create(
        model=SMOLLM,
        messages=ASK,
        temperature=0,
        max_tokens=8,
        logprobs=True,
        top_logprobs=3,
    )
    content = answer.choices[0].logprobs.content
    assert len(content) == answer.usage.completion_tokens
    assert "".join(t.token for t in content) == answer.choices[0].message.content
    for entry in content:
        check_entry(entry, 3)
        assert entry.top_logprobs[0].token == entry.token  # greedy: the most likely token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)


def test_streamed_chat_logprobs(client):
    stream = client.chat.completions.create(
        model=SMOLLM,
        messages=ASK,
        temperature=0,
        max_tokens=8,
        logprobs=True,
        top_logprobs=2,
        stream=True,
    )
    text, tokens = "", []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            tokens += chunk.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == text and len(tokens) == 8
    for entry in tokens:
        check_entry(entry, 2)


def test_no_logprobs_unless_asked(client):
    answer = client.chat.completions.create(model=SMOLLM, messages=ASK, temperature=0, max_tokens=4)
    assert answer.choices[0].logprobs is None


def test_completion_logprobs_in_the_legacy_shape(client):
    answer = client.completions.create(
        model=SMOLLM, prompt="The capital of France is", temperature=0, max_tokens=6, logprobs=2
    )
    choice = answer.choices[0]
    lp = choice.logprobs
    assert "".join(lp.tokens) == choice.text and len(lp.tokens) == 6
    assert all(v <= 0 for v in lp.token_logprobs)
    assert all(
        len(top) <= 2 and max(top.values()) == pytest.approx(v)
        for top, v in zip(lp.top_logprobs, lp.token_logprobs, strict=True)
    )
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(6)]
    streamed = client.completions.create(
        model=SMOLLM, prompt="The capital of France is", temperature=0, max_tokens=6, logprobs=2, stream=True
    )
    parts = [c.choices[0].logprobs for c in streamed if c.choices and c.choices[0].text]
    assert [t for p in parts for t in p.tokens] == lp.tokens
    assert [o for p in parts for o in p.text_offset] == lp.text_offset


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"best_of": 2}, "best_of"),
        ({"suffix": "and the end."}, "suffix"),
        ({"logit_bias": {"99999999": 5}}, "logit_bias"),
        ({"logit_bias": {"12": 101}}, "logit_bias"),
        ({"logit_bias": {"twelve": 1}}, "logit_bias"),
        ({"logprobs": 2, "echo": True}, "logprobs"),
    ],
)
def test_unsupported_or_invalid_fields_are_a_400_naming_them(client, kwargs, param):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=SMOLLM, prompt="Hello", max_tokens=2, **kwargs)
    assert info.value.body["param"].startswith(param)


def test_top_logprobs_needs_logprobs(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=SMOLLM, messages=ASK, max_tokens=2, top_logprobs=2)
    assert info.value.body["param"] == "top_logprobs"
