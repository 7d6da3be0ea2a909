"""ChatGLM3's `tool_call(k=v)` calls: written from JSON, read back with `ast`, and the grammar
that forces them (its mechanics on a real llama.cpp run are in
tests/integration/test_tiny_tool_calls.py)."""

from __future__ import annotations

import json

import pytest

from mingyan.chat.tool_calling import ReplyPlan, finish
from mingyan.errors import InvalidRequestError
from mingyan.formats import chatglm3
from mingyan.formats.grammar import SchemaError
from mingyan.formats.python_literals import PythonGrammar, call_arguments, python_call
from mingyan.formats.tool_calls import ToolChoice, ToolRequest, ToolSpec
from mingyan.formats.tool_formats import tool_format

PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 6},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "alerts": {"type": "boolean"},
        "note": {"type": ["string", "null"]},
    },
    "required": ["city", "days"],
}
FORECAST = ToolSpec("get_forecast", "天气预报", PARAMS)


def test_a_call_is_written_with_python_literals_as_chatglm3_trains_on_them():
    args = '{"city": "北京", "days": 3, "alerts": true, "note": null, "n": {"a": [1, 2.5, "it\'s"]}}'
    assert python_call(args) == "tool_call(city='北京', days=3, alerts=True, note=None, n={'a': [1, 2.5, \"it's\"]})"
    assert python_call("{}") == "tool_call()"


def test_reading_a_call_back_gives_the_same_json():
    args = {"city": "北京", "days": 3, "alerts": True, "note": None, "n": {"a": [1, 2.5, "x\ny"]}, "unit-type": "c"}
    text = python_call(json.dumps(args, ensure_ascii=False))
    assert json.loads(call_arguments(text)) == args
    assert call_arguments('tool_call(location="beijing", unit="celsius")') == (
        '{"location": "beijing", "unit": "celsius"}'  # PROMPT.md's example, double quotes
    )


@pytest.mark.parametrize(
    "text",
    [
        "tool_call(x=__import__('os').system('true'))",  # never evaluated: not a literal
        "tool_call(x=1 + 1)",
        "tool_call('positional')",
        "other_call(x=1)",
        "tool_call(x={1, 2})",  # a set: not JSON
        "tool_call(x=float('nan'))",
        "tool_call(x=1e999)",  # infinity
        "tool_call(**{1: 2})",
        "tool_call(x=1",
        "print(1)",
    ],
)
def test_anything_but_a_call_with_json_literal_values_is_not_a_call(text):
    assert call_arguments(text) is None


REPLY = "get_forecast\n```python\ntool_call(city='北京', days=3, unit='celsius')\n```"


def test_a_reply_with_a_call_parses_into_the_call():
    parsed = chatglm3.parse(REPLY, final=True)
    assert parsed.content == ""
    [call] = parsed.calls
    assert (call.name, json.loads(call.arguments)) == ("get_forecast", {"city": "北京", "days": 3, "unit": "celsius"})


def test_text_before_the_call_in_its_own_turn_is_the_content():
    parsed = chatglm3.parse("\n 好的，让我们来查看今天的天气\n<|assistant|>" + REPLY, final=True)
    assert parsed.content == "好的，让我们来查看今天的天气"
    assert [c.name for c in parsed.calls] == ["get_forecast"]


def test_plain_answers_and_other_code_stay_text():
    assert chatglm3.parse("\n 北京今天晴。", final=True).content == "北京今天晴。"
    assert chatglm3.parse("\n 北京今天晴。", final=True).calls == []
    code = "interpreter\n```python\nprint(1 + 1)\n```"
    assert chatglm3.parse(code, final=True).content == code and not chatglm3.parse(code, final=True).calls


def test_a_streamed_prefix_never_shows_what_may_become_a_call():
    for n in range(len(REPLY)):
        partial = chatglm3.parse(REPLY[:n], final=False)
        assert partial.content == "" and partial.calls == []
    text = "好的 get_forecast"
    assert chatglm3.parse(text, final=False).content == "好的"  # the name may be a call's header
    assert chatglm3.parse("好的<|assist", final=False).content == "好的"


def test_finish_checks_the_arguments_against_the_schema():
    plan = ReplyPlan(tool_format("chatglm3"), ToolRequest((FORECAST,)))
    good = finish(plan, REPLY)
    assert good.content is None and json.loads(good.calls[0].arguments)["city"] == "北京"
    bad = finish(plan, "get_forecast\n```python\ntool_call(city='北京')\n```")  # days is required
    assert bad.calls == () and "tool_call" in bad.content


def test_the_grammar_spells_keyword_arguments_and_python_values():
    grammar = chatglm3.constraint(ToolRequest((FORECAST,), ToolChoice("required"))).grammar
    rules = dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())
    assert rules["root"] == "call"
    assert rules["call"].startswith('"get_forecast\\n" " "? "```python\\ntool_call(" ')
    assert rules["call"].endswith(' ")\\n```"')
    kwargs = next(body for name, body in rules.items() if name.endswith("kwargs"))
    assert kwargs.startswith('"city=" ') and '("," sp "unit=" ' in kwargs
    assert rules["boolean"] == '"True" | "False"' and rules["null"] == '"None"'
    assert '"\'" schar{0,6} "\'"' in grammar  # maxLength in either quote
    assert "\"'celsius'\" | \"'fahrenheit'\"" in grammar


def test_auto_is_lazy_from_the_tools_name_line():
    constraint = chatglm3.constraint(ToolRequest((FORECAST,), ToolChoice("auto")))
    assert constraint.triggers == ("get_forecast\n",)


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "object", "properties": {"unit-type": {"type": "string"}}}, "unit-type"),
        ({"type": "object", "properties": {"class": {"type": "string"}}}, "class"),
        ({"type": "array"}, "object schema"),
        ({"anyOf": [{"type": "object"}]}, "anyOf"),
        ({"type": "object", "minProperties": 1}, "minProperties"),
    ],
)
def test_parameters_that_cannot_be_keyword_arguments_are_refused_by_name(schema, words):
    with pytest.raises(SchemaError, match=words):
        PythonGrammar().add_kwargs(schema, "p")
    request = ToolRequest((ToolSpec("f", "", schema),), ToolChoice("required"))
    with pytest.raises(InvalidRequestError, match=r"tools\[0\]\.function\.parameters"):
        tool_format("chatglm3").constraint(request)


def test_free_form_parameters_take_any_keyword_names():
    grammar = chatglm3.constraint(ToolRequest((ToolSpec("f", "", {"type": "object"}),), ToolChoice("required")))
    assert 'ident "=" value' in grammar.grammar


def test_a_tool_without_parameters_is_called_with_no_arguments():
    for schema in ({"type": "object", "additionalProperties": False}, {"type": "object", "properties": {}}):
        grammar = chatglm3.constraint(ToolRequest((ToolSpec("now", "", schema),), ToolChoice("required"))).grammar
        assert 'root ::= call\ncall ::= "now\\n" " "? "```python\\ntool_call("  ")\\n```"' in grammar
    parsed = chatglm3.parse("now\n```python\ntool_call()\n```", final=True)
    assert [(c.name, c.arguments) for c in parsed.calls] == [("now", "{}")]
