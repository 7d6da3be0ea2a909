"""Short conversation titles, written by the model after the first exchange.

The title job runs after the reply has finished, with a small token budget, so it never delays
a reply. Whatever the model writes is cleaned to one short line; if nothing usable comes back,
the start of the user's first message is the title.
"""

from __future__ import annotations

import re

from mingyan.chat.service import ChatService
from mingyan.engine.base import FinishReason, SamplingParams

TITLE_MAX_TOKENS = 24
TITLE_MAX_CHARS = 60
_QUOTES = "\"'“”‘’「」『』《》【】`*#"
_LABEL = re.compile(r"^(title|标题|題目|题目)\s*[:：]\s*", re.IGNORECASE)
INSTRUCTION = (  # chosen by trying it on Qwen2.5-0.5B: it names the topic instead of answering
    "Summarize the topic of this message as a short title (2-6 words, or 4-10 Chinese characters), "
    "in the same language as the message. Do not answer the message. Output only the title.\n\n"
    "Message: {message}\nTitle:"
)


def clean_title(raw: str) -> str:
    """One short line: no label, quotes, markdown or trailing punctuation."""
    for line in raw.splitlines():
        line = _LABEL.sub("", line.strip()).strip(_QUOTES + " \t")
        line = line.rstrip("。.!！?？,，;；:：").strip(_QUOTES + " \t")
        if line:
            return _shorten(line)
    return ""


def fallback_title(user_text: str) -> str:
    return _shorten(" ".join(user_text.split())) or "New chat"


def _shorten(text: str) -> str:
    if len(text) <= TITLE_MAX_CHARS:
        return text
    cut = text[: TITLE_MAX_CHARS - 1]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


async def make_title(chat: ChatService, user_text: str, *, user: str = "", scope: str = "") -> str:
    """A title for a conversation that starts with `user_text` (the question names the topic)."""
    prompt = INSTRUCTION.format(message=user_text[:1000])
    sampling = SamplingParams(temperature=0.2, max_tokens=TITLE_MAX_TOKENS)
    try:
        request = await chat.chat_request([{"role": "user", "content": prompt}], sampling, user=user, scope=scope)
        done = await chat.complete(request)
    except Exception:  # noqa: BLE001 - a title is never worth an error
        return fallback_title(user_text)
    if done.finish_reason is FinishReason.CONTENT_FILTER:  # the content policy stopped the title
        return fallback_title(user_text)
    return clean_title(done.text) or fallback_title(user_text)
