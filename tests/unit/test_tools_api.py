"""Tool calling, response_format and the field audit of /v1, over the fake engine.

The fake engine cannot run grammars: it records the constraint each request carries and
replies with canned text (FakeEngine(replies=...)), so these tests check what the API layer
does with a reply in a family's format; tests/integration/test_tools.py runs the real model.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>'
USER = [{"role": "user", "content": "北京天气？"}]


def client_for(*replies: str, family: str | None = "qwen2") -> tuple[TestClient, FakeEngine]:
    engine = FakeEngine(n_ctx=4096, replies=replies, family=family)
    return TestClient(create_app(Settings(), engine)), engine


def post(client, **body):
    body.setdefault("messages", USER)
    return client.post("/v1/chat/completions", json=body)


def sse_chunks(response) -> list[dict]:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


def test_a_call_in_the_family_format_comes_back_as_tool_calls():
    client, engine = client_for(CALL)
    with client:
        r = post(client, tools=[WEATHER], tool_choice="required")
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "北京"}'}
    constraint = engine.requests[-1].sampling.constraint
    assert constraint is not None and not constraint.triggers  # required: the whole reply is the call


def test_auto_lets_the_model_answer_in_words():
    client, engine = client_for("北京今天晴。")
    with client:
        r = post(client, tools=[WEATHER])
    choice = r.json()["choices"][0]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": "北京今天晴。"},
        "finish_reason": "stop",
        "logprobs": None,
    }  # OpenAI sends logprobs: null when none were asked for
    assert "prose" in engine.requests[-1].sampling.constraint.grammar


def test_tool_choice_none_offers_no_tool_and_parses_no_call():
    client, engine = client_for(CALL)
    with client:
        r = post(client, tools=[WEATHER], tool_choice="none")
    message = r.json()["choices"][0]["message"]
    assert message["content"] == CALL and "tool_calls" not in message
    assert engine.requests[-1].sampling.constraint is None
    assert "<tools>" not in FakeEngine.detokenize(engine.requests[-1].prompt_tokens)


def test_a_named_choice_constrains_to_that_tool_only():
    client, engine = client_for('<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>')
    with client:
        r = post(client, tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"
    grammar = engine.requests[-1].sampling.constraint.grammar
    assert '\\"get_time\\"' in grammar and "get_weather" not in grammar


def test_a_call_to_a_tool_not_offered_stays_text():
    client, _ = client_for('<tool_call>\n{"name": "rm_rf", "arguments": {}}\n</tool_call>')
    with client:
        r = post(client, tools=[WEATHER])
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and "rm_rf" in choice["message"]["content"]


def test_the_stream_carries_index_id_and_name_first_then_argument_pieces():
    client, _ = client_for(CALL + "\n" + CALL.replace("北京", "上海"))
    with client:
        r = post(client, tools=[WEATHER], stream=True, stream_options={"include_usage": True})
    chunks = sse_chunks(r)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    firsts = [c for c in calls if c.get("id")]
    assert [c["index"] for c in firsts] == [0, 1]
    assert all(c["function"]["name"] == "get_weather" and c["type"] == "function" for c in firsts)
    args = {i: "".join(c["function"]["arguments"] or "" for c in calls if c["index"] == i) for i in (0, 1)}
    assert args == {0: '{"city": "北京"}', 1: '{"city": "上海"}'}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert not any(d.get("content") for d in deltas)


def test_history_with_calls_and_results_is_rendered_by_the_template():
    client, engine = client_for("好的")
    history = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "北京"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "晴"},
    ]
    with client:
        r = post(client, messages=history, tools=[WEATHER])
    assert r.status_code == 200, r.text
    prompt = FakeEngine.detokenize(engine.requests[-1].prompt_tokens)
    # The fake's ChatML template knows no tools: the format describes them in the system turn
    # and writes the call and its result as ordinary turns, in the Hermes spelling.
    assert prompt.startswith("<|im_start|>system\n# Tools") and '"name": "get_weather"' in prompt
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call><|im_end|>'  # noqa: E501 - a reference rendering
        in prompt
    )
    assert "<|im_start|>user\n<tool_response>\n晴\n</tool_response><|im_end|>" in prompt


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"functions": []}, "functions"),
        ({"store": True}, "store"),
        ({"tool_choice": "required"}, None),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, None),
        ({"tools": [WEATHER, WEATHER]}, None),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}},
                        },
                    }
                ],
                "tool_choice": "required",
            },
            "tools[0].function.parameters",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "a+"}},
                }
            },
            "response_format.json_schema.schema",
        ),
        ({"response_format": {"type": "json_schema"}}, None),
        ({"messages": [{"role": "tool", "content": "x"}]}, None),
        ({"messages": [{"role": "assistant", "content": None}]}, None),
        ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_unsupported_or_inconsistent_requests_are_a_400_naming_the_field(body, param):
    client, engine = client_for("x")
    with client:
        r = post(client, **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    if param is not None:
        assert error["param"] == param
        assert param.split(".")[0].split("[")[0] in error["message"] or param in error["message"]
    assert engine.requests == []


def test_harmless_fields_are_accepted():
    client, _ = client_for("x")
    with client:
        r = post(client, metadata={"k": "v"}, store=False, service_tier="auto")
    assert r.status_code == 200, r.text


def test_response_format_sends_a_grammar_to_the_engine():
    client, engine = client_for('{"a": 1}', '{"name": "x"}')
    with client:
        r1 = post(client, response_format={"type": "json_object"})
        r2 = post(
            client,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "p",
                    "strict": True,
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                },
            },
        )
    assert json.loads(r1.json()["choices"][0]["message"]["content"]) == {"a": 1}
    assert json.loads(r2.json()["choices"][0]["message"]["content"]) == {"name": "x"}
    assert [r.sampling.constraint.triggers for r in engine.requests] == [(), ()]
    assert '"\\"name\\""' in engine.requests[1].sampling.constraint.grammar
