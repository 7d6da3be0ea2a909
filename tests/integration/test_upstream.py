"""An upstream engine: a second `mingyan serve` on 127.0.0.1 registered as the engine of model
`remote` in the first (`--upstream remote=URL/v1#smollm2-135m-instruct`), driven through the
first one's /v1 and /api with the official `openai` client: plain and streamed replies, usage,
tool calls and the upstream's errors pass through; an upstream that is down is a 503 for that
model only."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.conftest import SMOLLM, start_server, stop_server

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
FORCED = {"type": "function", "function": {"name": "get_weather"}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    quiet = ("--embedding-model", "none", "--n-ctx", "1024")
    upstream = start_server(tmp_path_factory.mktemp("upstream"), SMOLLM, *quiet)
    front = start_server(
        tmp_path_factory.mktemp("front"),
        SMOLLM,
        *quiet,
        "--upstream",
        f"remote={upstream.base_url}#{SMOLLM}",
        "--no-auto-titles",
    )
    yield front, upstream
    stop_server(front)
    if upstream.process.poll() is None:
        stop_server(upstream)


def client_of(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=300)


def ask(client: openai.OpenAI, model: str, **kw):
    return client.chat.completions.create(
        model=model, **({"messages": QUESTION, "max_tokens": 24, "temperature": 0} | kw)
    )


def test_replies_usage_and_tool_calls_pass_through(servers):
    front, upstream = servers
    via, direct = client_of(front), client_of(upstream)
    assert {m.id for m in via.models.list().data} == {SMOLLM, "remote"}

    reply, own = ask(via, "remote"), ask(direct, SMOLLM)
    assert reply.model == "remote"
    assert reply.choices[0].message.content == own.choices[0].message.content
    assert reply.usage is not None and reply.usage.prompt_tokens == own.usage.prompt_tokens

    chunks = list(ask(via, "remote", stream=True, stream_options={"include_usage": True}))
    assert all(c.model == "remote" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == own.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == own.usage.completion_tokens
    plain = list(ask(via, "remote", stream=True))
    assert all(c.usage is None for c in plain)  # not asked for: not sent

    called = ask(via, "remote", tools=[WEATHER], tool_choice=FORCED, max_tokens=60)
    call = called.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
    assert called.choices[0].finish_reason == "tool_calls"
    streamed = list(ask(via, "remote", tools=[WEATHER], tool_choice=FORCED, max_tokens=60, stream=True))
    deltas = [d for c in streamed if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == json.loads(call.function.arguments)

    with pytest.raises(openai.BadRequestError) as error:  # the upstream's own refusal
        ask(via, "remote", max_tokens=100_000)
    assert error.value.code == "context_length_exceeded"


def test_stored_conversation_on_the_upstream_model(servers):
    front, _ = servers
    with httpx.Client(base_url=front.url + "/api", timeout=300) as api:
        conversation = api.post("/conversations", json={"model": "remote", "settings": {"max_tokens": 24}}).json()
        r = api.post(f"/conversations/{conversation['id']}/messages", json={"content": "Say hello.", "stream": False})
        assert r.status_code == 200, r.text
        message = r.json()["message"]
        assert message["status"] == "complete" and message["model_name"] == "remote" and message["content"]
        assert message["completion_tokens"] > 0 and message["prompt_tokens"] > 0  # the upstream's usage


def test_upstream_down_is_503_for_its_model_only(servers):
    front, upstream = servers
    stop_server(upstream)
    via = client_of(front)
    with pytest.raises(openai.APIStatusError) as error:
        ask(via, "remote")
    assert error.value.status_code == 503 and error.value.code == "model_unavailable"
    assert ask(via, SMOLLM).choices[0].message.content  # the local model still answers
    health = front.health()
    assert health["status"] == "ok" and "remote" in (health["last_engine_error"] or "")
