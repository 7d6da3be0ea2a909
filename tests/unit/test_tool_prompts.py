"""Whole tool conversations rendered by mingyan, compared byte for byte with the families' own
renderings: system, user, an assistant call, the tool's result, the answer and a follow-up.

- Llama 3.1: the official template (meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json, kept
  verbatim in tests/fixtures/templates/ as llama.cpp ships it in models/templates/) rendered
  here with plain jinja2 the way Hugging Face's apply_chat_template renders it, and the same
  text written out by hand.
- ChatGLM3: its renderer is Python, not a template (THUDM/ChatGLM3 tokenization_chatglm.py
  build_chat_input; the tool turns of PROMPT.md and finetune_chatmodel_demo/preprocess_utils.py),
  so its text for this conversation is written out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mingyan.formats.family_templates import CHATGLM3, CHATGLM3_TOOLS, LLAMA3
from mingyan.formats.template import ChatTemplate
from mingyan.formats.tool_calls import ToolChoice, ToolRequest, ToolSpec
from mingyan.formats.tool_formats import tool_format

LLAMA31 = (Path(__file__).parents[1] / "fixtures/templates/meta-llama-Llama-3.1-8B-Instruct.jinja").read_text()
BOS = "<|begin_of_text|>"
WEATHER = ToolSpec(
    "get_weather",
    "查询城市天气",
    {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]},
)
TOOLS = ToolRequest((WEATHER,), ToolChoice("auto"))
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"北京"}'}}
CONVERSATION = [
    {"role": "system", "content": "你是天气助手。"},
    {"role": "user", "content": "北京天气？"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "晴，25°C"},
    {"role": "assistant", "content": "北京晴，25°C。"},
    {"role": "user", "content": "那上海呢？"},
]


def mingyan_prompt(family: str, source: str, messages=CONVERSATION, request=TOOLS, bos: str = "") -> str:
    """What mingyan renders (chat/service.py does the same steps before tokenizing)."""
    fmt = tool_format(family)
    template = fmt.chat_template(ChatTemplate(source, bos_token=bos))
    prepared = fmt.prepare(messages, request, template.source)
    return template.render(prepared, tools=fmt.template_tools(template.source, request))


def hugging_face_render(source: str, messages: list[dict], tools: list[dict] | None, bos: str) -> str:
    """The template rendered as transformers' apply_chat_template does (same Jinja options,
    its tojson), with the conversation as transformers takes it (arguments as objects)."""

    def tojson(value, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise AssertionError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source).render(messages=messages, tools=tools, add_generation_prompt=True, bos_token=bos)


def as_transformers_takes_it(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if k != "tool_call_id"}
        if m.get("tool_calls"):
            m["tool_calls"] = [
                {"type": "function", "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}}
                for c in m["tool_calls"]
            ]
            m["content"] = ""
        out.append(m)
    return out


LLAMA31_EXPECTED = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
    "你是天气助手。<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    "Given the following functions, please respond with a JSON for a function call with its proper "
    "arguments that best answers the given prompt.\n\n"
    'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.'
    "Do not use variables.\n\n" + json.dumps(WEATHER.openai(), indent=4, ensure_ascii=False) + "\n\n"
    "北京天气？<|eot_id|>"
    '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "北京"}}<|eot_id|>'
    '<|start_header_id|>ipython<|end_header_id|>\n\n"晴，25°C"<|eot_id|>'
    "<|start_header_id|>assistant<|end_header_id|>\n\n北京晴，25°C。<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n那上海呢？<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def test_llama31_whole_tool_conversation_is_the_official_templates_rendering():
    official = hugging_face_render(LLAMA31, as_transformers_takes_it(CONVERSATION), [WEATHER.openai()], BOS)
    assert official == LLAMA31_EXPECTED  # the reference itself, checked against the text by hand
    assert mingyan_prompt("llama3", LLAMA31, bos=BOS) == official


@pytest.mark.parametrize("source", [LLAMA31, LLAMA3], ids=["llama-3.1", "llama-3.0"])
def test_llama3_several_calls_in_one_message_become_one_turn_each(source):
    second = {**CALL, "id": "call_2", "function": {"name": "get_weather", "arguments": '{"city": "上海", "days": 2}'}}
    messages = [
        {"role": "user", "content": "北京和上海天气？"},
        {"role": "assistant", "content": "", "tool_calls": [CALL, second]},
        {"role": "tool", "tool_call_id": "call_1", "content": "晴"},
        {"role": "tool", "tool_call_id": "call_2", "content": "雨"},
    ]
    text = mingyan_prompt("llama3", source, messages, bos=BOS)
    assert text.count("<|start_header_id|>assistant<|end_header_id|>\n\n{") == 2
    assert '{"name": "get_weather", "parameters": {"city": "上海", "days": 2}}<|eot_id|>' in text
    result = '"雨"' if source == LLAMA31 else "雨"  # 3.1 writes a string result as JSON (tojson)
    assert text.endswith(
        f"ipython<|end_header_id|>\n\n{result}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama31_history_without_callable_tools_still_renders_the_call_turns_officially():
    none = ToolRequest((WEATHER,), ToolChoice("none"))
    official = hugging_face_render(LLAMA31, as_transformers_takes_it(CONVERSATION), None, BOS)
    assert "Environment: ipython" not in official
    assert mingyan_prompt("llama3", LLAMA31, request=none, bos=BOS) == official


CHATGLM3_EXPECTED = (
    "[gMASK]sop<|system|>\n Answer the following questions as best as you can. You have access to the "
    "following tools:\n" + json.dumps([WEATHER.openai()["function"]], indent=4, ensure_ascii=False) + ""
    "<|system|>\n 你是天气助手。<|user|>\n 北京天气？"
    "<|assistant|>get_weather\n ```python\ntool_call(city='北京')\n```"
    "<|observation|>\n 晴，25°C<|assistant|>\n 北京晴，25°C。<|user|>\n 那上海呢？<|assistant|>"
)


def test_chatglm3_whole_tool_conversation_is_its_own_format():
    # Tools: PROMPT.md's system sentence + json.dumps(tools, indent=4, ensure_ascii=False) of the
    # functions ({name, description, parameters}); the call: metadata = the name, content = the
    # code block with keyword arguments as Python literals; the result: an observation turn.
    assert mingyan_prompt("chatglm3", CHATGLM3) == CHATGLM3_EXPECTED


def test_chatglm3_text_before_a_call_is_a_turn_of_its_own_and_odd_names_stay_python():
    call = {"function": {"name": "get_weather", "arguments": '{"city": "上海", "unit-type": "c", "ok": true}'}}
    messages = [
        {"role": "user", "content": "上海天气？"},
        {"role": "assistant", "content": "好的，让我查一下。", "tool_calls": [call]},
        {"role": "tool", "content": '{"temperature": 22}'},
    ]
    text = mingyan_prompt("chatglm3", CHATGLM3, messages)
    assert text.endswith(
        "<|user|>\n 上海天气？<|assistant|>\n 好的，让我查一下。"
        "<|assistant|>get_weather\n ```python\ntool_call(city='上海', ok=True, **{'unit-type': 'c'})\n```"
        '<|observation|>\n {"temperature": 22}<|assistant|>'
    )


def test_chatglm3_tool_template_renders_plain_turns_exactly_as_the_verbatim_template():
    plain = [{"role": m["role"], "content": m["content"] or ""} for m in CONVERSATION if m["role"] != "tool"]
    verbatim = ChatTemplate(CHATGLM3).render(plain)
    assert ChatTemplate(CHATGLM3_TOOLS).render([{**m, "metadata": ""} for m in plain]) == verbatim


def test_chatglm3_without_callable_tools_keeps_the_history_but_lists_no_tools():
    text = mingyan_prompt("chatglm3", CHATGLM3, request=ToolRequest((WEATHER,), ToolChoice("none")))
    assert "You have access to the following tools" not in text
    assert "<|assistant|>get_weather\n ```python\ntool_call(city='北京')\n```<|observation|>" in text
