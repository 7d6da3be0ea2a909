"""The prompt of a stored conversation's tool loop once tool results are in: the answer turn.

Small models (the default qwen2.5-coder-0.5b) given a result in their template's own
tool-result turn (`<tool_response>` inside a user turn, for Qwen2.5) mostly do not use it:
they apologise that they cannot look things up, or write the same call again. Given the same
result restated in the user's own turn, with one line asking for an answer from it, they
answer with it (docs/tools.md, "Limits and what was measured", has the figures; `bench/tool_results.py`
measures it). This is what retrieval-augmented prompts do, and the tool loop owns its prompt,
so after the results of a reply's calls its next model turn is rendered this way:

- every turn before the current user message is kept as it is (earlier tool steps in their
  family's tool turns);
- the current user message is followed, in the same user turn, by each call of this reply
  (`name(arguments)`) and its result, then the instruction, in the user's language (Chinese
  when the message holds Chinese characters, else English);
- the assistant turns that only held calls, and the tool turns, of this reply are left out
  (they are restated above). Text an assistant turn of this reply wrote beside its calls is kept
  in the restatement, so nothing the model said is lost.

The stored tree is unchanged: the loop still stores each call and result as its own message.
A result stays data: it is restated as text (special-token text in it is tokenized as plain
text, as in any message), and nothing in it is parsed.

Only /api conversations use this; /v1 renders a client's conversation with the family's own
template, always.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_WORDS = {
    "zh": {
        "head": "（为回答这个问题调用了工具，结果如下）",
        "returned": "返回",
        "said": "助手",
        "ask": "请根据以上工具结果，直接回答上面的问题。",
    },
    "en": {
        "head": "(Tools were called to answer this question; their results follow.)",
        "returned": "returned",
        "said": "Assistant",
        "ask": "Answer the question above directly, using the tool results.",
    },
}


def user_language(text: str) -> str:
    """`zh` when the text holds Chinese characters, else `en`."""
    return "zh" if _HAN.search(text) else "en"


def has_results(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the conversation ends with this reply's tool results (after its last user turn)."""
    start = _last_user(messages)
    return start is not None and any(m["role"] == "tool" for m in messages[start + 1 :])


def called_tools(messages: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """The names of the tools called after the last user turn (this reply's calls so far)."""
    start = _last_user(messages)
    if start is None:
        return frozenset()
    return frozenset(
        call["function"]["name"]
        for m in messages[start + 1 :]
        if m["role"] == "assistant"
        for call in m.get("tool_calls") or []
    )


def answer_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`messages` (OpenAI-shaped: assistant `tool_calls`, `tool` results) with this reply's
    calls and results restated in the last user turn, followed by the instruction to answer
    from them (see the module docstring). Without results after the last user turn: unchanged."""
    start = _last_user(messages)
    if start is None or not has_results(messages):
        return [dict(m) for m in messages]
    question = messages[start].get("content") or ""
    words = _WORDS[user_language(question)]
    names: dict[str, str] = {}  # call id -> "name(arguments)"
    lines = [question, "", words["head"]]
    for m in messages[start + 1 :]:
        if m["role"] == "assistant":
            if m.get("content"):
                lines += [f"{words['said']}: {m['content']}"]
            for call in m.get("tool_calls") or []:
                function = call["function"]
                names[call["id"]] = f"{function['name']}({_readable(function['arguments'])})"
        elif m["role"] == "tool":
            call = names.get(m.get("tool_call_id") or "", "tool")
            lines += [f"{call} {words['returned']}:", m.get("content") or "", ""]
    lines.append(words["ask"])
    return [*(dict(m) for m in messages[:start]), {"role": "user", "content": "\n".join(lines)}]


def _readable(arguments: str) -> str:
    """JSON arguments with their characters as themselves (`北京`, not `\\u5317\\u4eac`)."""
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        return arguments


def _last_user(messages: Sequence[Mapping[str, Any]]) -> int | None:
    return next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user"), None)
