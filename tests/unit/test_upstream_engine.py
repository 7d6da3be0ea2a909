"""The upstream engine's own checks, without a server: what it refuses before any request, and an
upstream that cannot be reached (a closed port on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from mingyan.engine.base import GenerationRequest, SamplingParams
from mingyan.errors import InvalidRequestError, ModelError, UpstreamUnavailable
from mingyan.formats.grammar import Constraint
from mingyan.serving.upstream import UpstreamEngine, parse_upstream


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engine(port: int = 9) -> UpstreamEngine:
    return UpstreamEngine(parse_upstream(f"big=http://127.0.0.1:{port}/v1#Qwen/Qwen2.5-7B"))


def prompt(e: UpstreamEngine) -> tuple[int, ...]:
    text = e.chat_template.render([{"role": "user", "content": "你好"}])
    assert json.loads(text) == [{"role": "user", "content": "你好"}]
    return tuple(e.tokenize(text))


def test_parse_upstream() -> None:
    up = parse_upstream("big=http://user:secret@gpu-box:8000/v1/#Qwen/Qwen2.5-7B", api_key="k")
    assert (up.name, up.url, up.model, up.api_key) == (
        "big",
        "http://user:secret@gpu-box:8000/v1",
        "Qwen/Qwen2.5-7B",
        "k",
    )
    assert "secret" not in up.shown_url
    assert parse_upstream("small=https://h/v1").model == "small"
    for bad in ("big", "=http://h/v1", "big=ftp://h", "big=http://"):
        with pytest.raises(ModelError):
            parse_upstream(bad)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"logit_bias": ((1, 5.0),)}, "logit_bias"),
        ({"logprobs": 2}, "logprobs"),
        ({"sampling": SamplingParams(constraint=Constraint('root ::= "a"'))}, "response_format"),
    ],
)
def test_fields_that_are_not_forwarded_are_refused_by_name(options, field) -> None:
    e = engine()
    with pytest.raises(InvalidRequestError) as error:
        e.generate(GenerationRequest(prompt(e), **options))
    assert error.value.param == field


def test_unreachable_upstream_is_unavailable_and_counted() -> None:
    e = engine(closed_port())

    async def run() -> None:
        stream = e.generate(GenerationRequest(prompt(e)))
        try:
            async for _ in stream:
                pass
        finally:
            await stream.aclose()

    with pytest.raises(UpstreamUnavailable, match="'big' is unavailable"):
        asyncio.run(run())
    stats = e.stats()
    assert stats.errors_total == 1 and "127.0.0.1" in (stats.last_error or "") and stats.active == 0
