"""Tool calling in each model family's own format: the registry, and the families' formats.

A `ToolFormat` turns an OpenAI conversation (messages with `tool_calls` and `tool` results,
plus the tool specs) into messages the family's chat template renders, builds the grammar
that forces a call, and parses the family's reply back into calls. The family itself is
decided in `mingyan.formats.families`; `tool_format(family_name)` looks its format up here
(no if/elif chain: one class per family, one registry entry each).

Sources, per family (the text each renders is checked against them in tests/unit/test_tool_formats.py):
- Qwen2.5: the model's own chat template (Qwen/Qwen2.5-7B-Instruct tokenizer_config.json,
  kept verbatim in engine/family_templates.py) renders `tools`, assistant `tool_calls` and
  `tool` results itself (Hermes style: `<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>`,
  results as `<tool_response>` inside a user turn).
- Llama 3.x: meta-llama/Llama-3.2-3B-Instruct chat template (llama.cpp
  models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja): tools in the first user message,
  a call is the bare JSON `{"name": ..., "parameters": ...}`, results in the `ipython` role.
  A GGUF carrying the Llama 3.1 template (meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json,
  llama.cpp models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja; 3.2 and 3.3 alike) gets
  `tools` and Hugging Face-shaped messages, and that template renders them.
- GLM-4: THUDM/glm-4-9b-chat chat template (tokenization_chatglm.py default_chat_template):
  the `# 可用工具` system block, a call is `<|assistant|>{name}\\n{arguments json}`, results
  are `<|observation|>` turns (a stop token of the family).
- ChatGLM3: THUDM/ChatGLM3 PROMPT.md, tokenization_chatglm.py build_chat_input, the tool demos
  (details in formats/chatglm3.py): the tools as JSON in the system turn,
  `<|assistant|>{name}\\n` + a ```` ```python\\ntool_call(k=v)\\n``` ```` block, `<|observation|>` results.
- Everything else (Baichuan2, ERNIE 4.5, whose published templates define no tool format;
  llama-arch models without a Llama 3 template, unknown families): mingyan's generic envelope
  (docs/tools.md), the Hermes markers explained in a system message.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from mingyan.formats import chatglm3
from mingyan.formats.envelope import Envelope, PartialCall, PartialReply
from mingyan.formats.family_templates import CHATGLM3_TOOLS
from mingyan.formats.grammar import Constraint
from mingyan.formats.template import ChatTemplate
from mingyan.formats.tool_calls import ToolRequest, ToolSpec

Message = Mapping[str, Any]  # an OpenAI chat message as a dict (tool_calls' arguments are JSON text)


class ToolFormat:
    """The generic envelope; families override what their templates do differently."""

    envelope = Envelope(open="<tool_call>\n", close="\n</tool_call>")
    stop: tuple[str, ...] = ()  # extra stop strings while tools are offered

    def template_tools(self, template_source: str, request: ToolRequest | None) -> list[dict] | None:
        """The `tools` the chat template gets (None: it renders none, we put them in messages)."""
        return None

    def chat_template(self, template: ChatTemplate) -> ChatTemplate:
        """The template that renders tool conversations (the model's own, unless its family's
        template has no place for what tool turns need)."""
        return template

    def prepare(
        self, messages: Sequence[Message], request: ToolRequest | None, template_source: str = ""
    ) -> list[dict]:
        """Template messages for `messages`, the tools described in them when the template will not."""
        out = [self.convert(m) for m in messages]
        if request is not None and request.callable_tools:
            out = _with_system_text(out, self.tools_text(request.tools))
        return _merge_tool_turns(out)

    def convert(self, message: Message) -> dict:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            return {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
        if role == "assistant" and message.get("tool_calls"):
            calls = "\n".join(
                self.envelope.render_call(c["function"]["name"], c["function"]["arguments"])
                for c in message["tool_calls"]
            )
            return {"role": "assistant", "content": (content + "\n" + calls).strip()}
        return {"role": role, "content": content}

    def tools_text(self, tools: Sequence[ToolSpec]) -> str:
        specs = "\n".join(json.dumps(t.openai(), ensure_ascii=False) for t in tools)
        return (
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{specs}\n</tools>\n\n"  # noqa: E501 - the reference text, verbatim
            "For each function call, return a json object with function name and arguments within "
            '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
            "<args-json-object>}\n</tool_call>"
        )

    def constraint(self, request: ToolRequest) -> Constraint:
        return self.envelope.constraint(request)

    def parse(self, text: str, final: bool) -> PartialReply:
        return self.envelope.parse(text, final)


class QwenFormat(ToolFormat):
    """Qwen2.5: its chat template renders tools, calls and results (see the module docstring)."""

    def template_tools(self, template_source: str, request: ToolRequest | None) -> list[dict] | None:
        if request is None or not request.callable_tools or "tool_call" not in template_source:
            return None
        return [t.openai() for t in request.tools]

    def prepare(
        self, messages: Sequence[Message], request: ToolRequest | None, template_source: str = ""
    ) -> list[dict]:
        if "tool_call" not in template_source:  # a Qwen GGUF whose template predates tools
            return super().prepare(messages, request, template_source)
        return [_hf_message(m) for m in messages]  # the template does the rest


class Llama3Format(ToolFormat):
    """Llama 3.x JSON calls: `{"name": ..., "parameters": {...}}` as the whole reply.

    A Llama 3.1+ template (it handles `tool_calls`) renders tools, calls and `ipython` results
    itself, as Hugging Face's apply_chat_template would give them to it; the Llama 3.0 template
    (no tools) gets the 3.1 text for tools in the first user message, written here."""

    envelope = Envelope(open="", close="", args_key="parameters", separator="", marker='{"name"')

    def template_tools(self, template_source: str, request: ToolRequest | None) -> list[dict] | None:
        if request is None or not request.callable_tools or "tool_calls" not in template_source:
            return None
        return [t.openai() for t in request.tools]

    def convert(self, message: Message) -> dict:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            return {"role": "ipython", "content": content}
        if role == "assistant" and message.get("tool_calls"):
            call = message["tool_calls"][0]["function"]  # one call per turn (see prepare)
            return {"role": "assistant", "content": self.envelope.render_call(call["name"], call["arguments"])}
        return {"role": role, "content": content}

    def prepare(
        self, messages: Sequence[Message], request: ToolRequest | None, template_source: str = ""
    ) -> list[dict]:
        turns = _one_call_per_turn(messages)  # Llama 3 writes one call per assistant turn
        if "tool_calls" in template_source:
            return [_hf_message(m) for m in turns]
        out = [self.convert(m) for m in turns]
        if request is None or not request.callable_tools:
            return out
        first = next((i for i, m in enumerate(out) if m["role"] == "user"), None)
        if first is None:
            return out
        specs = "".join(json.dumps(t.openai(), ensure_ascii=False, indent=4) + "\n\n" for t in request.tools)
        out[first] = {
            "role": "user",
            "content": (
                "Given the following functions, please respond with a JSON for a function call with its "
                "proper arguments that best answers the given prompt.\n\n"
                'Respond in the format {"name": function name, "parameters": dictionary of argument name '
                "and its value}.Do not use variables.\n\n" + specs + out[first]["content"].strip()
            ),
        }
        return out

    def constraint(self, request: ToolRequest) -> Constraint:
        single = ToolRequest(request.tools, request.choice, parallel=False)
        return self.envelope.constraint(single)


class ChatGLM3Format(ToolFormat):
    """ChatGLM3: tools in the system turn, a call as `name\\n` + ```` ```python\\ntool_call(k=v)\\n``` ````,
    results as `<|observation|>` turns (sources in formats/chatglm3.py)."""

    stop = ("<|observation|>",)

    def chat_template(self, template: ChatTemplate) -> ChatTemplate:
        return chatglm3_tools_template()

    def prepare(
        self, messages: Sequence[Message], request: ToolRequest | None, template_source: str = ""
    ) -> list[dict]:
        out: list[dict] = []
        if request is not None and request.callable_tools:
            out.append({"role": "system", "metadata": "", "content": chatglm3.tools_text(request.tools)})
        for m in messages:
            role, content = m["role"], m.get("content") or ""
            if role == "tool":
                out.append({"role": "observation", "metadata": "", "content": content})
            elif role == "assistant" and m.get("tool_calls"):
                if content.strip():  # what the model said before calling: a turn of its own
                    out.append({"role": "assistant", "metadata": "", "content": content})
                out += [
                    {
                        "role": "assistant",
                        "metadata": c["function"]["name"],
                        "content": chatglm3.call_content(c["function"]["arguments"]),
                    }
                    for c in m["tool_calls"]
                ]
            else:
                out.append({"role": role, "metadata": "", "content": content})
        return out

    def constraint(self, request: ToolRequest) -> Constraint:
        return chatglm3.constraint(ToolRequest(request.tools, request.choice, parallel=False))

    def parse(self, text: str, final: bool) -> PartialReply:
        return chatglm3.parse(text, final)


@functools.cache
def chatglm3_tools_template() -> ChatTemplate:
    """ChatGLM3's template with each turn's metadata (compiled once, on first use)."""
    return ChatTemplate(CHATGLM3_TOOLS)


class Glm4Format(ToolFormat):
    """GLM-4: `# 可用工具` system block; a call is the function name, a newline, its JSON arguments."""

    envelope = Envelope(open="", close="", separator="")
    stop = ("<|observation|>",)

    def convert(self, message: Message) -> dict:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            return {"role": "observation", "content": content, "metadata": ""}
        if role == "assistant" and message.get("tool_calls"):
            call = message["tool_calls"][0]["function"]
            return {"role": "assistant", "metadata": call["name"], "content": call["arguments"]}
        return {"role": role, "content": content, "metadata": ""}

    def prepare(
        self, messages: Sequence[Message], request: ToolRequest | None, template_source: str = ""
    ) -> list[dict]:
        out: list[dict] = []
        for m in messages:  # one assistant turn per call, as GLM-4 writes them
            calls = m.get("tool_calls") or [] if m["role"] == "assistant" else []
            out += [self.convert({**m, "tool_calls": [c]}) for c in calls] or [self.convert(m)]
        if request is None or not request.callable_tools:
            return out
        blocks = "".join(
            f"\n\n## {t.name}\n\n{json.dumps(t.openai()['function'], ensure_ascii=False, indent=4)}"
            "\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
            for t in request.tools
        )
        system = (
            "你是一个名为 GLM-4 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，"
            "你的任务是针对用户的问题和要求提供适当的答复和支持。\n\n# 可用工具" + blocks
        )
        return [{"role": "system", "content": system, "metadata": ""}, *out]

    def constraint(self, request: ToolRequest) -> Constraint:
        return Glm4Envelope().constraint(ToolRequest(request.tools, request.choice, parallel=False))

    def parse(self, text: str, final: bool) -> PartialReply:
        return Glm4Envelope().parse(text, final)


class Glm4Envelope(Envelope):
    """`name\\n{json}`: spelled as an envelope whose prefix is the name line."""

    def __init__(self) -> None:
        super().__init__(open="", close="", separator="", lazy_auto=True)

    def call_prefix(self, name: str) -> str:
        return f"{name}\n"

    def call_suffix(self) -> str:
        return ""

    def triggers(self, request: ToolRequest) -> tuple[str, ...]:
        return tuple(f"{t.name}\n" for t in request.callable_tools)

    def parse(self, text: str, final: bool) -> PartialReply:
        body = text.lstrip("\n")
        name, newline, args = body.partition("\n")
        is_call = bool(newline) and _is_name(name.strip()) and args.lstrip().startswith("{")
        if not is_call:
            undecided = not final and (not newline or (_is_name(name.strip()) and not args.strip()))
            return PartialReply("", []) if undecided else PartialReply(text.strip() if final else body.strip(), [])
        arguments = args.strip()
        if final and not _is_json_object(arguments):
            return PartialReply(text.strip(), [])
        return PartialReply("", [PartialCall(name.strip(), arguments, final)])


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _is_name(text: str) -> bool:
    return bool(text) and all(c.isalnum() or c in "_-." for c in text)


def _hf_message(message: Message) -> dict:
    """An OpenAI message as Hugging Face chat templates take it (arguments as objects)."""
    out = {"role": message["role"], "content": message.get("content") or ""}
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])},
            }
            for c in message["tool_calls"]
        ]
    return out


def _one_call_per_turn(messages: Sequence[Message]) -> list[Message]:
    """An assistant message with several calls as consecutive assistant messages, one call each."""
    out: list[Message] = []
    for m in messages:
        calls = m.get("tool_calls") or [] if m["role"] == "assistant" else []
        if len(calls) > 1:
            out += [
                {**m, "content": m.get("content") if i == 0 else "", "tool_calls": [c]} for i, c in enumerate(calls)
            ]
        else:
            out.append(m)
    return out


def _with_system_text(messages: list[dict], text: str) -> list[dict]:
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0], content=(messages[0]["content"] + "\n\n" + text).strip())
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _merge_tool_turns(messages: list[dict]) -> list[dict]:
    """Consecutive tool results become one user turn (templates want user/assistant turns)."""
    out: list[dict] = []
    for m in messages:
        if (
            out
            and m["role"] == "user"
            and out[-1]["role"] == "user"
            and m["content"].startswith("<tool_response>")
            and out[-1]["content"].startswith("<tool_response>")
        ):
            out[-1] = dict(out[-1], content=out[-1]["content"] + "\n" + m["content"])
        else:
            out.append(m)
    return out


_FORMATS: Mapping[str, type[ToolFormat]] = {
    "qwen2": QwenFormat,
    "llama3": Llama3Format,
    "glm4": Glm4Format,
    "chatglm3": ChatGLM3Format,
}


def tool_format(family: str | None) -> ToolFormat:
    """The tool format of a family (mingyan's generic envelope for any other)."""
    return _FORMATS.get(family or "", ToolFormat)()


def format_name(family: str | None) -> str:
    return _FORMATS.get(family or "", ToolFormat).__name__
