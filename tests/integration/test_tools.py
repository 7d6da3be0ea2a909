"""Tool calls and structured output with the real default model, through the official client.

Requests run four at a time (the server batches them on its slots); the seeded streaming
comparison runs alone, because a seeded sample repeats exactly only without concurrent load.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest
from openai import OpenAI

from tests.conftest import QWEN, start_server, stop_server

pytestmark = pytest.mark.timeout(3600)  # dozens of 0.5B-model requests on a 2-core machine

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "获取指定城市的当前天气 / Get the current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "城市名 / city name", "maxLength": 30},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
FLIGHTS = {
    "type": "function",
    "function": {
        "name": "search_flights",
        "description": "查询航班 / Search flights between two cities on a date",
        "parameters": {
            "type": "object",
            "properties": {
                "origin": {"type": "string", "maxLength": 30},
                "destination": {"type": "string", "maxLength": 30},
                "date": {"type": "string", "maxLength": 20},
            },
            "required": ["origin", "destination"],
        },
    },
}
CURRENCY = {
    "type": "function",
    "function": {
        "name": "convert_currency",
        "description": "货币换算 / Convert an amount between currencies",
        "parameters": {
            "type": "object",
            "properties": {
                "amount": {"type": "number"},
                "from": {"type": "string", "enum": ["CNY", "USD", "EUR", "JPY"]},
                "to": {"type": "string", "enum": ["CNY", "USD", "EUR", "JPY"]},
            },
            "required": ["amount", "from", "to"],
        },
    },
}
TOOLS = [WEATHER, FLIGHTS, CURRENCY]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}

PROMPTS = [
    ("北京今天天气怎么样？", None),
    ("上海明天会下雨吗？", "get_weather"),
    ("帮我查一下从北京到广州的航班。", None),
    ("12月5日从深圳飞成都有哪些航班？", "search_flights"),
    ("100美元等于多少人民币？", None),
    ("把500日元换成欧元。", "convert_currency"),
    ("杭州现在多少度？", "get_weather"),
    ("我想订下周一去西安的机票，从南京出发。", None),
    ("一千元人民币能换多少美元？", "convert_currency"),
    ("哈尔滨冷不冷？", None),
    ("What's the weather like in Tokyo?", None),
    ("Is it snowing in Boston right now?", "get_weather"),
    ("Find me flights from London to Paris on Friday.", "search_flights"),
    ("Convert 250 euros to US dollars.", None),
    ("How many yen is 40 dollars?", "convert_currency"),
    ("Flights from Seattle to Denver tomorrow?", None),
    ("Tell me the temperature in Sydney in fahrenheit.", "get_weather"),
    ("I need to fly from Berlin to Rome.", None),
    ("What is 75 USD in CNY?", None),
    ("Weather in Cairo please.", "get_weather"),
]


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("tools"), None)
    yield OpenAI(base_url=server.base_url, api_key="unused", timeout=1800, max_retries=0)
    stop_server(server)


def ask(client, messages, **kw):
    return client.chat.completions.create(model=QWEN, messages=messages, **({"max_tokens": 300, "temperature": 0} | kw))


def run_all(fn, items):
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(fn, items))


def test_required_and_named_choices_always_call_a_given_tool_with_valid_arguments(qwen):
    def one(item):
        prompt, named = item
        choice = {"type": "function", "function": {"name": named}} if named else "required"
        return named, ask(qwen, [{"role": "user", "content": prompt}], tools=TOOLS, tool_choice=choice).choices[0]

    results = run_all(one, PROMPTS)
    assert len(results) == 20
    for named, choice in results:
        assert choice.finish_reason == "tool_calls"
        assert choice.message.tool_calls, choice.message
        for call in choice.message.tool_calls:
            assert call.id.startswith("call_")
            assert call.function.name == named if named else call.function.name in SCHEMAS
            jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_auto_calls_the_weather_tool_and_answers_other_questions_in_words(qwen):
    weather, other = run_all(
        lambda prompt: ask(qwen, [{"role": "user", "content": prompt}], tools=[WEATHER]).choices[0],
        ["北京今天天气怎么样？", "用一句话介绍一下长城。"],
    )
    assert weather.finish_reason == "tool_calls"
    assert weather.message.tool_calls[0].function.name == "get_weather"
    assert "北京" in json.loads(weather.message.tool_calls[0].function.arguments)["city"]
    assert other.finish_reason == "stop" and not other.message.tool_calls
    assert other.message.content and "长城" in other.message.content


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the 0.5B default model answers a tool result with an apology or a repeated call, not its value "
        "(seen at temperature 0 and seeds 1-6; see docs/tools.md); the rendering itself is the reference's: "
        "the prompt equals Qwen2.5's official template output, and without a grammar the model repeats the "
        "call as bare JSON with UTF-8 or escaped results, in English, with tool_choice none (docs/tools.md)"
    ),
)
def test_a_second_turn_with_the_tool_result_answers_with_its_value(qwen):
    first = ask(qwen, [{"role": "user", "content": "北京今天天气怎么样？"}], tools=[WEATHER], tool_choice="required")
    call = first.choices[0].message.tool_calls[0]
    messages = [
        {"role": "user", "content": "北京今天天气怎么样？"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 23, "condition": "晴"})},
    ]
    reply = ask(qwen, messages, tools=[WEATHER]).choices[0]
    assert reply.finish_reason == "stop" and "23" in (reply.message.content or "")


def test_streamed_deltas_of_a_seeded_request_reassemble_into_the_non_streamed_call(qwen):
    params = {"tools": TOOLS, "tool_choice": "required", "temperature": 0.8, "seed": 11}
    messages = [{"role": "user", "content": "帮我查一下明天从北京到上海的航班，再看看上海的天气。"}]
    whole = ask(qwen, messages, **params).choices[0].message.tool_calls
    stream = ask(qwen, messages, stream=True, stream_options={"include_usage": True}, **params)
    calls: dict[int, dict] = {}
    finish, usage = None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                if delta.id:
                    assert entry["id"] is None and delta.function.name  # id and name come first, once
                    entry["id"], entry["name"] = delta.id, delta.function.name
                entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls" and usage is not None and usage.completion_tokens > 0
    assert [(c["name"], c["arguments"]) for _, c in sorted(calls.items())] == [
        (c.function.name, c.function.arguments) for c in whole
    ]


PERSON = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 30},
        "age": {"type": "integer"},
        "city": {"type": "string", "maxLength": 30},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
        "employed": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "hobbies", "employed"],
}
SUBJECTS = [
    "一位北京的程序员",
    "a retired teacher from Ohio",
    "一个喜欢爬山的大学生",
    "a chef in Lyon",
    "一位上海的医生",
    "a teenage skateboarder",
    "一位退休的京剧演员",
    "a marine biologist",
    "一位成都的茶馆老板",
    "a jazz pianist",
]
STYLES = [
    "Describe {} as JSON.",
    "用JSON描述{}。",
    "Invent {} and give their profile.",
    "请给出{}的资料。",
    "Return a profile of {}.",
]


def test_json_schema_replies_parse_and_validate_for_fifty_prompts(qwen):
    prompts = [style.format(subject) for style in STYLES for subject in SUBJECTS]
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}}
    replies = run_all(
        lambda p: ask(
            qwen, [{"role": "user", "content": p}], response_format=fmt, max_tokens=300, temperature=0.7, seed=3
        ).choices[0],
        prompts,
    )
    assert len(replies) == 50
    for reply in replies:
        assert reply.finish_reason == "stop", reply.message.content
        jsonschema.validate(json.loads(reply.message.content), PERSON)


def test_json_object_replies_parse(qwen):
    prompts = [
        "Give me a JSON object describing a cat.",
        "用JSON对象列出三种水果及其颜色。",
        "Return your answer as JSON: what is the capital of France?",
        "把今天的待办事项写成JSON对象。",
    ]
    replies = run_all(
        lambda p: ask(
            qwen, [{"role": "user", "content": p}], max_tokens=300, response_format={"type": "json_object"}
        ).choices[0],
        prompts,
    )
    for reply in replies:
        assert reply.finish_reason == "stop", reply.message.content
        assert isinstance(json.loads(reply.message.content), dict)
