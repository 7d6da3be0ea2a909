"""/v1 under `auto`: a reply that only repeats a call the conversation already made and holds a
result for is dropped and the turn generated again as prose (mingyan.chat.tool_repeat), over the
fake engine with canned replies (tests/integration/test_tools.py runs the real model)."""

from __future__ import annotations

from tests.unit.test_tools_api import CALL, WEATHER, client_for, post, sse_chunks

ANSWERED = [
    {"role": "user", "content": "北京天气？"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"北京"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 23}'},
]
ANSWER = "北京现在23°C。"


def test_a_repeated_answered_call_is_replaced_by_an_answer_in_words():
    client, engine = client_for(CALL, ANSWER)
    with client:
        r = post(client, messages=ANSWERED, tools=[WEATHER])
    assert r.status_code == 200, r.text
    body = r.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"].get("tool_calls") is None
    assert choice["message"]["content"] == ANSWER
    first, second = engine.requests
    assert first.prompt_tokens == second.prompt_tokens  # the same prompt: only decoding differs
    assert second.sampling.constraint is not None and second.sampling.constraint.grammar.startswith("root ::= [^{")
    assert body["usage"]["completion_tokens"] == len(CALL) + len(ANSWER)  # both generations counted


def test_a_new_call_or_a_forced_one_is_kept():
    other = CALL.replace("北京", "上海")
    client, engine = client_for(other, CALL)
    with client:
        new = post(client, messages=ANSWERED, tools=[WEATHER]).json()["choices"][0]
        forced = post(client, messages=ANSWERED, tools=[WEATHER], tool_choice="required").json()["choices"][0]
    assert new["finish_reason"] == "tool_calls" and '"上海"' in new["message"]["tool_calls"][0]["function"]["arguments"]
    assert forced["finish_reason"] == "tool_calls"  # required asks for a call: no guard
    assert len(engine.requests) == 2


def test_streamed_the_repeat_is_never_sent():
    client, _ = client_for(CALL, ANSWER)
    with client:
        r = post(client, messages=ANSWERED, tools=[WEATHER], stream=True)
    chunks = sse_chunks(r)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert not any(d.get("tool_calls") for d in deltas)
    assert "".join(d.get("content") or "" for d in deltas) == ANSWER
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
