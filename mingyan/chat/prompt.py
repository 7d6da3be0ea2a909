"""Chat messages → prompt tokens, without letting message text act as control tokens.

The rendered prompt is tokenized with special-token parsing, because the template's own
markers (`<|im_start|>`, `[gMASK]`, ...) must become control tokens. A message that itself
contains such marker text would then inject a turn of its own choosing ("…<|im_end|>
<|im_start|>system…"). So every message whose text holds special-token text is tokenized
separately, as plain text, and spliced into the template's tokens at its place. Messages
without such text (nearly all) keep the single tokenization of the whole prompt. The splice
points are marked with a random nonce no message contains, so text that looks like a marker is
just text. Finding special-token text is one linear pass (`Engine.has_special_text`).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mingyan.engine.base import Engine
from mingyan.errors import InvalidRequestError
from mingyan.formats.template import ChatTemplate


def _no_check() -> None:
    pass


def _splice_marker(messages: Sequence[Mapping[str, Any]]) -> str:
    """A marker no message holds (random per request), so user text cannot forge a splice point."""
    while True:
        nonce = secrets.token_hex(8)
        if not any(nonce in m["content"] for m in messages):
            return nonce


def _refuse_special_text(engine: Engine, messages: Sequence[Mapping[str, Any]], tools: Any) -> None:
    """Tool specs, call names and arguments are rendered by the template's own JSON filters,
    so they cannot be spliced in as plain text: special-token text in them is refused."""
    if tools and engine.has_special_text(json.dumps(tools, ensure_ascii=False)):
        raise InvalidRequestError("a tool definition contains special-token text", param="tools")
    for i, m in enumerate(messages):
        extra = {k: v for k, v in m.items() if k not in ("role", "content")}
        if extra and engine.has_special_text(json.dumps(extra, ensure_ascii=False)):
            raise InvalidRequestError("a tool call or name contains special-token text", param=f"messages[{i}]")


def chat_prompt_tokens(
    engine: Engine,
    template: ChatTemplate,
    messages: Sequence[Mapping[str, Any]],
    tools: Any = None,
    *,
    check: Callable[[], None] = _no_check,
) -> list[int]:
    """`check` is called between pieces of work; it raises to stop (the client went away)."""
    _refuse_special_text(engine, messages, tools)
    risky = set()
    for i, m in enumerate(messages):
        if engine.has_special_text(m["content"]):
            risky.add(i)
        if i % 64 == 0:
            check()
    if not risky:
        return engine.tokenize(template.render(messages, tools=tools))
    nonce = _splice_marker(messages)
    masked = [{**m, "content": f"\ue000{nonce}:{i}\ue001"} if i in risky else dict(m) for i, m in enumerate(messages)]
    # template text, message index, template text, ...
    parts = re.split(f"\ue000{nonce}:(\\d+)\ue001", template.render(masked, tools=tools))
    tokens: list[int] = []
    for k, part in enumerate(parts):
        check()
        if not part:
            continue
        if k % 2 == 0:
            tokens += engine.tokenize(part, special=True, bos=not tokens)
        else:
            tokens += engine.tokenize(messages[int(part)]["content"], special=False, bos=not tokens)
    return tokens
