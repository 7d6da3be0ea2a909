"""Each family's tool format: the prompt it renders, the replies it parses, streamed or whole."""

from __future__ import annotations

import json
import random

import pytest

from mingyan.chat.tool_calling import CallStream, ReplyPlan, finish
from mingyan.formats.family_templates import GLM4, LLAMA3, QWEN2
from mingyan.formats.template import ChatTemplate
from mingyan.formats.tool_calls import ToolChoice, ToolRequest, ToolSpec
from mingyan.formats.tool_formats import tool_format

WEATHER = ToolSpec(
    "get_weather", "查询天气", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
)
REQUIRED = ToolRequest((WEATHER,), ToolChoice("required"))
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "北京"}'}}
HISTORY = [
    {"role": "user", "content": "北京天气？"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "晴"},
]


def render(family: str, source: str, request=REQUIRED, messages=HISTORY) -> str:
    fmt = tool_format(family)
    template = ChatTemplate(source, bos_token="<|begin_of_text|>")
    return template.render(fmt.prepare(messages, request, source), tools=fmt.template_tools(source, request))


def test_qwen_renders_tools_calls_and_results_as_its_reference_template_does():
    # The expected text is what Qwen2.5's published template produces for this conversation
    # (its system block, <tool_call> with arguments as an object, <tool_response> in a user turn).
    tool = json.dumps(WEATHER.openai(), ensure_ascii=False)
    assert render("qwen2", QWEN2) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n"
        "You may call one or more functions to assist with the user query.\n\nYou are provided with function "
        f"signatures within <tools></tools> XML tags:\n<tools>\n{tool}\n</tools>\n\nFor each function call, "
        "return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\n北京天气？<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call><|im_end|>\n'  # noqa: E501 - a reference rendering
        "<|im_start|>user\n<tool_response>\n晴\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )


def test_glm4_renders_the_available_tools_block_and_observation_turns():
    text = render("glm4", GLM4)
    function = json.dumps(WEATHER.openai()["function"], ensure_ascii=False, indent=4)
    assert text == (
        "[gMASK]<sop><|system|>\n你是一个名为 GLM-4 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，"
        "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具\n\n## get_weather\n\n"
        f"{function}\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
        '<|user|>\n北京天气？<|assistant|>get_weather\n{"city": "北京"}<|observation|>\n晴<|assistant|>\n'
    )


def test_llama3_puts_tools_in_the_first_user_message_and_results_in_ipython():
    text = render("llama3", LLAMA3)
    assert "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions" in text
    assert '{"name": "get_weather", "parameters": {"city": "北京"}}<|eot_id|>' in text
    assert "<|start_header_id|>ipython<|end_header_id|>\n\n晴<|eot_id|>" in text


REPLIES = {
    "qwen2": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京 \\"东城\\"", "n": {"a": [1, 2]}}}\n</tool_call>\n'  # noqa: E501 - a reference rendering
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "上海"}}\n</tool_call>',
    "llama3": '{"name": "get_weather", "parameters": {"city": "北京", "n": {"a": "}"}}}',
    "glm4": 'get_weather\n{"city": "北京", "n": {"a": [1, "}"]}}',
    "chatglm3": "\n 好的，我查一下。\n<|assistant|>get_weather\n```python\n"
    "tool_call(city='北京', n={'a': [1, '}', None]})\n```",
    None: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>',
}
SCHEMA_FREE = ToolSpec("get_weather", "", {"type": "object"})


@pytest.mark.parametrize("family", list(REPLIES))
def test_streamed_pieces_add_up_to_the_whole_parse_for_any_split(family):
    plan = ReplyPlan(tool_format(family), ToolRequest((SCHEMA_FREE,)))
    text = REPLIES[family]
    whole = finish(plan, text)
    assert whole.calls and all(json.loads(c.arguments) for c in whole.calls)
    rng = random.Random(7)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(12, len(text) - 1)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        stream, content, args, names = CallStream(plan), "", {}, {}
        for i, piece in enumerate(pieces):
            more, deltas = stream.feed(piece, final=i == len(pieces) - 1)
            content += more
            for d in deltas:
                if d.id:
                    names[d.index] = d.name
                args[d.index] = args.get(d.index, "") + d.arguments
        assert content == (whole.content or "")
        assert [names[i] for i in sorted(names)] == [c.name for c in whole.calls]
        assert [args[i] for i in sorted(args)] == [c.arguments for c in whole.calls]


def test_plain_text_with_tools_offered_stays_text():
    plan = ReplyPlan(tool_format("qwen2"), ToolRequest((WEATHER,)))
    assert finish(plan, "北京今天晴。").content == "北京今天晴。"
    assert finish(plan, "北京今天晴。").calls == ()


def test_arguments_that_break_the_tools_schema_leave_the_reply_as_text():
    plan = ReplyPlan(tool_format("qwen2"), ToolRequest((WEATHER,)))
    reply = finish(plan, '<tool_call>\n{"name": "get_weather", "arguments": {"town": "x"}}\n</tool_call>')
    assert reply.calls == () and "town" in reply.content
