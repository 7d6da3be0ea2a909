"""The answer turn of the tool loop (mingyan.chat.tool_answer): this reply's calls and results
restated in the user's turn with the instruction in the user's language; everything before the
current question kept as it was."""

from __future__ import annotations

from mingyan.chat.tool_answer import answer_messages, called_tools, has_results, user_language


def call(cid: str, name: str, arguments: str) -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}


EARLIER = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": None, "tool_calls": [call("c0", "add", '{"a": 2, "b": 2}')]},
    {"role": "tool", "tool_call_id": "c0", "content": "4"},
    {"role": "assistant", "content": "4."},
]


def test_results_are_restated_in_the_users_turn_in_chinese() -> None:
    messages = [
        *EARLIER,
        {"role": "user", "content": "北京和上海今天天气怎么样？"},
        {
            "role": "assistant",
            "content": "我来查一下。",
            "tool_calls": [
                call("c1", "get_weather", '{"city": "北京"}'),
                call("c2", "get_weather", '{"city": "\\u4e0a\\u6d77"}'),  # as json.dumps sends it
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "晴，-3°C"},
        {"role": "tool", "tool_call_id": "c2", "content": "error: the server cannot be reached"},
    ]
    out = answer_messages(messages)
    assert out[: len(EARLIER)] == EARLIER  # earlier turns, their tool steps included, as they were
    assert len(out) == len(EARLIER) + 1 and out[-1]["role"] == "user"
    text = out[-1]["content"]
    assert text.startswith("北京和上海今天天气怎么样？\n")
    assert '助手: 我来查一下。\nget_weather({"city": "北京"}) 返回:\n晴，-3°C\n' in text
    assert 'get_weather({"city": "上海"}) 返回:\nerror: the server cannot be reached' in text
    assert text.endswith("请根据以上工具结果，直接回答上面的问题。")
    assert messages[-1]["role"] == "tool"  # the input is not changed


def test_english_questions_get_english_words_and_no_results_change_nothing() -> None:
    asked = [{"role": "user", "content": "Who is on call?"}]
    assert answer_messages(asked) == asked and not has_results(asked)
    messages = [
        *asked,
        {"role": "assistant", "content": None, "tool_calls": [call("c1", "get_oncall", "{}")]},
        {"role": "tool", "tool_call_id": "c1", "content": "Priya"},
    ]
    assert has_results(messages)
    text = answer_messages(messages)[-1]["content"]
    assert "get_oncall({}) returned:\nPriya" in text
    assert text.endswith("Answer the question above directly, using the tool results.")
    assert user_language("Python 怎么读文件？") == "zh" and user_language("naïve café") == "en"


def test_called_tools_are_this_replys_only() -> None:
    messages = [
        *EARLIER,
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call("c1", "get_weather", "{}")]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert called_tools(messages) == {"get_weather"}
    assert called_tools(EARLIER[:2]) == frozenset()
