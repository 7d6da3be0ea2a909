"""ChatGLM3's own tool format: the tools in the system turn, a call as a Python code block.

Sources (THUDM/ChatGLM3):
- PROMPT.md, "工具调用": the system turn is `Answer the following questions as best as you can.
  You have access to the following tools:` and the tools as JSON; a call is an assistant turn
  whose metadata is the tool's name, `<|assistant|>get_current_weather` + a newline, and whose
  content is a code block ```` ```python\\ntool_call(location="beijing", unit="celsius")\\n``` ````;
  the result is an `<|observation|>` turn; the model may first say something in an assistant
  turn of its own (`<|assistant|>\\n好的，让我们来查看今天的天气`).
- tokenization_chatglm.py `build_chat_input` / `build_single_message`: each turn is
  `<|role|>` + `{metadata}\\n` + content; a system turn with `tools` gets
  `"\\n" + json.dumps(tools, indent=4, ensure_ascii=False)` after its text.
- finetune_chatmodel_demo/preprocess_utils.py: the tool definition prefix (the sentence above
  and a newline), calls written with `format_function_call` (keyword arguments, values as
  Python literals), results as observation turns.
- openai_api_demo/utils.py `process_response`: a reply is split at `<|assistant|>`; a part whose
  metadata line is not empty is a call, its code block's middle lines are `tool_call(...)`
  (read there with `eval`; here with `ast`). Generation stops at `<|user|>` and `<|observation|>`.

The chat template in chatglm3-6b's tokenizer_config.json renders `<|role|>\\n ` + content and has
no place for metadata, so tool conversations are rendered with `TOOLS_TEMPLATE`
(formats/family_templates.py), the same text plus each turn's metadata.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from mingyan.errors import InvalidRequestError
from mingyan.formats.envelope import PartialCall, PartialReply
from mingyan.formats.grammar import Constraint, SchemaError, gbnf_literal
from mingyan.formats.python_literals import PythonGrammar, call_arguments, python_call
from mingyan.formats.tool_calls import ToolRequest, ToolSpec

TURN = "<|assistant|>"
OPEN = "```python\n"
CLOSE = "\n```"
NAME = r"[A-Za-z0-9_.\-/]"
HEADER = re.compile(rf"(?<!{NAME})({NAME}+)\n ?```python\n")
OPENINGS = ("\n" + OPEN, "\n " + OPEN)
# A name at the end of the text, maybe followed by the start of an opening: a header to be.
TAIL = re.compile(rf"{NAME}+(?:{'|'.join(re.escape(o[:k]) for o in OPENINGS for k in range(len(o), 0, -1))})?\Z")
TOOLS_PREFIX = "Answer the following questions as best as you can. You have access to the following tools:\n"


def tools_text(tools: Sequence[ToolSpec]) -> str:
    """The system turn's text: the prefix and the tools as ChatGLM3 lists them (name,
    description, parameters; indent 4)."""
    return TOOLS_PREFIX + json.dumps([t.openai()["function"] for t in tools], indent=4, ensure_ascii=False)


def call_content(arguments: str) -> str:
    """The content of a call turn (its metadata is the tool's name)."""
    return OPEN + python_call(arguments) + CLOSE


def constraint(request: ToolRequest) -> Constraint:
    """One call: `name\\n` + the code block with keyword arguments valid against the tool's
    schema; lazy from `name\\n` under `auto` (text before a call is free)."""
    builder = PythonGrammar()
    alternatives = []
    for index, tool in enumerate(request.tools):
        if tool not in request.callable_tools:
            continue
        try:
            kwargs = builder.add_kwargs(tool.parameters, f"tool-{index}")
        except SchemaError as exc:
            param = f"tools[{index}].function.parameters"
            raise InvalidRequestError(f"{param}: {exc}", param=param) from exc
        head = gbnf_literal(f"{tool.name}\n")
        body = gbnf_literal(OPEN + "tool_call(")
        alternatives.append(f'{head} " "? {body} {kwargs} {gbnf_literal(")" + CLOSE)}')
    root = builder.add("call", " | ".join(alternatives))
    grammar = builder.render(root)
    if request.choice.mode == "auto":
        return Constraint(grammar, triggers=tuple(f"{t.name}\n" for t in request.callable_tools))
    return Constraint(grammar)


def parse(text: str, final: bool) -> PartialReply:
    """Content and at most one call. The call is `name` + newline + the code block, where the
    model writes it (ChatGLM3 opens a new `<|assistant|>` turn for it; after text of its own
    the name may follow that text directly). Not `final`: only what can no longer change;
    a call comes whole, when its code block closes."""
    match = HEADER.search(text)
    if match is None:
        return PartialReply(_prose(text if final else text[: _held_from(text)]), [])
    before = _prose(text[: match.start()])
    code = text[match.end() :]
    end = code.find(CLOSE)
    if end < 0 and not final:
        return PartialReply(before, [])
    arguments = call_arguments(code[:end]) if end >= 0 and not code[end + len(CLOSE) :].strip() else None
    if arguments is None:  # not a call after all (e.g. ChatGLM3's `interpreter` code): text
        return PartialReply(_prose(text) if final else before, [])
    return PartialReply(before, [PartialCall(match.group(1), arguments, True)])


def _prose(text: str) -> str:
    """The text of the reply's turns, without the `<|assistant|>` markers between them."""
    return "\n".join(part.strip() for part in text.split(TURN) if part.strip())


def _held_from(text: str) -> int:
    """Where a tail starts that may still become `<|assistant|>` or a call's header."""
    cut = len(text)
    for n in range(min(len(TURN) - 1, len(text)), 0, -1):
        if TURN.startswith(text[-n:]):
            cut -= n
            break
    tail = TAIL.search(text[:cut])
    return cut if tail is None else tail.start()
