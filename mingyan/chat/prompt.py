"""Chat messages → prompt tokens, without letting message text act as control tokens.

The rendered prompt is tokenized with special-token parsing, because the template's own
markers (`<|im_start|>`, `[gMASK]`, ...) must become control tokens. A message that itself
contains such marker text would then inject a turn of its own choosing ("…<|im_end|>
<|im_start|>system…"). So every message whose text holds special-token text is tokenized
separately, as plain text, and spliced into the template's tokens at its place. Messages
without such text (nearly all) keep the single tokenization of the whole prompt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from mingyan.engine.base import Engine
from mingyan.formats.template import ChatTemplate

_MARK = "\ue000{}\ue001"  # private-use characters: never produced by a template
_MARK_RE = re.compile("\ue000(\\d+)\ue001")


def _has_special_text(engine: Engine, text: str) -> bool:
    return engine.tokenize(text, special=True, bos=False) != engine.tokenize(text, special=False, bos=False)


def chat_prompt_tokens(
    engine: Engine, template: ChatTemplate, messages: Sequence[Mapping[str, str]]
) -> list[int]:
    risky = {i for i, m in enumerate(messages) if _has_special_text(engine, m["content"])}
    if not risky:
        return engine.tokenize(template.render(messages))
    masked = [
        {**m, "content": _MARK.format(i)} if i in risky else dict(m) for i, m in enumerate(messages)
    ]
    parts = _MARK_RE.split(template.render(masked))  # template text, message index, template text, ...
    tokens: list[int] = []
    for k, part in enumerate(parts):
        if not part:
            continue
        if k % 2 == 0:
            tokens += engine.tokenize(part, special=True, bos=not tokens)
        else:
            tokens += engine.tokenize(messages[int(part)]["content"], special=False, bos=not tokens)
    return tokens
