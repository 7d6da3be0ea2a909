"""Tool calls on a tiny model of every family: the grammar forces each family's call syntax,
and the reply is parsed by that family's own parser (see tests/tiny_models.py for the models).

The tiny models cannot choose anything sensible (their logits favour one filler token), so
this shows the mechanics per family: the rendered prompt fits the architecture, the grammar
writes the family's spelling, the engine stops after the call, and the family's parser reads
it back into an OpenAI tool call whose arguments validate.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import jsonschema
import openai
import pytest
from fastapi.testclient import TestClient

from mingyan.api.app import create_app
from mingyan.chat.service import ChatService, collect
from mingyan.chat.tool_calling import plan_reply
from mingyan.config import Settings
from mingyan.engine.base import SamplingParams
from mingyan.engine.llamacpp.engine import EngineConfig, LlamaCppEngine
from mingyan.formats.tool_calls import ToolChoice, ToolRequest, ToolSpec
from mingyan.formats.tool_formats import format_name, tool_format
from tests.tiny_models import FAMILIES

PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 6},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "days", "unit"],
}
TOOL = {"type": "function", "function": {"name": "get_forecast", "description": "天气预报", "parameters": PARAMS}}
OTHER = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
pytestmark = pytest.mark.timeout(900)
EXPECTED_FORMAT = {
    "qwen2": "QwenFormat",
    "llama3": "Llama3Format",
    "glm4": "Glm4Format",
    "chatglm3": "ChatGLM3Format",
    "ernie4_5": "ToolFormat",
    "baichuan2": "ToolFormat",
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def served(request, tiny_model_path) -> Iterator[tuple[str, openai.OpenAI, LlamaCppEngine]]:
    name = request.param
    engine = LlamaCppEngine(
        tiny_model_path(name), name=f"tiny-{name}", config=EngineConfig(n_ctx=1024, n_threads=2, n_slots=1)
    )
    with (
        TestClient(create_app(Settings(), engine)) as http,
        openai.OpenAI(base_url=f"{http.base_url}/v1", api_key="unused", http_client=http, max_retries=0) as client,
    ):
        yield name, client, engine
    engine.close()


def test_required_choice_returns_a_call_parsed_by_the_familys_own_parser(served):
    name, client, engine = served
    assert engine.info.family == name and format_name(name) == EXPECTED_FORMAT[name]
    reply = client.chat.completions.create(
        model=f"tiny-{name}",
        messages=[{"role": "user", "content": "明天北京天气？"}],
        tools=[TOOL, OTHER],
        tool_choice={"type": "function", "function": {"name": "get_forecast"}},
        temperature=0,
        max_tokens=200,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    [call] = choice.message.tool_calls
    assert call.function.name == "get_forecast"
    jsonschema.validate(json.loads(call.function.arguments), PARAMS)


def test_the_raw_reply_is_written_in_the_familys_spelling(served):
    name, _, engine = served
    service = ChatService(engine)
    fmt = tool_format(name)
    tools = ToolRequest((ToolSpec("get_forecast", "", PARAMS),), ToolChoice("required"))
    plan = plan_reply(engine.info.family, tools, None)
    sampling = SamplingParams(temperature=0, max_tokens=200)

    async def run():
        request = await service.chat_request([{"role": "user", "content": "明天北京天气？"}], sampling, plan=plan)
        return await collect(engine.generate(request))

    done = asyncio.run(run())
    prefix = "get_forecast\n" if name in ("glm4", "chatglm3") else fmt.envelope.call_prefix("get_forecast")
    assert done.text.startswith(prefix), done.text
    if name == "chatglm3":  # ChatGLM3's Python call: tool_call(city='…', days=…, unit='…') in a code block
        assert re.fullmatch(
            r"get_forecast\n ?```python\ntool_call\(city=.*, ?days=-?\d+, ?unit='\w+'\)\n```", done.text
        )
    parsed = fmt.parse(done.text, final=True)
    assert [c.name for c in parsed.calls] == ["get_forecast"]
    jsonschema.validate(json.loads(parsed.calls[0].arguments), PARAMS)


RICH = {
    "type": "object",
    "properties": {
        "flag": {"type": "boolean"},
        "nothing": {"type": "null"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2},
        "where": {
            "type": "object",
            "properties": {"lat": {"type": "number"}, "mode": {"enum": ["a", True, None]}},
            "required": ["lat", "mode"],
        },
    },
    "required": ["flag", "nothing", "tags", "where"],
}


def test_every_kind_of_value_is_written_in_the_familys_spelling_and_parses(served):
    # Booleans, null, arrays, nested objects and mixed enums: JSON in most families, Python
    # literals (True, None, quotes) in ChatGLM3's tool_call(...); each parses back and validates.
    name, client, _ = served
    tool = {"type": "function", "function": {"name": "mark", "parameters": RICH}}
    reply = client.chat.completions.create(
        model=f"tiny-{name}",
        messages=[{"role": "user", "content": "标记一下"}],
        tools=[tool],
        tool_choice="required",
        temperature=0,
        max_tokens=300,
    )
    assert reply.choices[0].finish_reason == "tool_calls", reply.choices[0].message.content
    [call] = reply.choices[0].message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), RICH)
