"""Chat messages → prompt tokens, without letting message text act as control tokens.

The rendered prompt is tokenized with special-token parsing, because the template's own
markers (`<|im_start|>`, `[gMASK]`, ...) must become control tokens. A message that itself
contains such marker text would then inject a turn of its own choosing ("…<|im_end|>
<|im_start|>system…"). So every message whose text holds special-token text is tokenized
separately, as plain text, and spliced into the template's tokens at its place. Messages
without such text (nearly all) keep the single tokenization of the whole prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mingyan.engine.base import Engine
from mingyan.engine.template import ChatTemplate
from mingyan.errors import InvalidRequestError

_MARK = "\ue000{}\ue001"  # private-use characters: never produced by a template
_MARK_RE = re.compile("\ue000(\\d+)\ue001")


def _has_special_text(engine: Engine, text: str) -> bool:
    return engine.tokenize(text, special=True, bos=False) != engine.tokenize(text, special=False, bos=False)


def _refuse_special_text(engine: Engine, messages: Sequence[Mapping[str, Any]], tools: Any) -> None:
    """Tool specs, call names and arguments are rendered by the template's own JSON filters,
    so they cannot be spliced in as plain text: special-token text in them is refused."""
    if tools and _has_special_text(engine, json.dumps(tools, ensure_ascii=False)):
        raise InvalidRequestError("a tool definition contains special-token text", param="tools")
    for i, m in enumerate(messages):
        extra = {k: v for k, v in m.items() if k not in ("role", "content")}
        if extra and _has_special_text(engine, json.dumps(extra, ensure_ascii=False)):
            raise InvalidRequestError(
                "a tool call or name contains special-token text", param=f"messages[{i}]"
            )


def chat_prompt_tokens(
    engine: Engine, template: ChatTemplate, messages: Sequence[Mapping[str, Any]], tools: Any = None
) -> list[int]:
    _refuse_special_text(engine, messages, tools)
    risky = {i for i, m in enumerate(messages) if _has_special_text(engine, m["content"])}
    if not risky:
        return engine.tokenize(template.render(messages, tools=tools))
    masked = [
        {**m, "content": _MARK.format(i)} if i in risky else dict(m) for i, m in enumerate(messages)
    ]
    parts = _MARK_RE.split(template.render(masked, tools=tools))  # template text, message index, template text, ...
    tokens: list[int] = []
    for k, part in enumerate(parts):
        if not part:
            continue
        if k % 2 == 0:
            tokens += engine.tokenize(part, special=True, bos=not tokens)
        else:
            tokens += engine.tokenize(messages[int(part)]["content"], special=False, bos=not tokens)
    return tokens
