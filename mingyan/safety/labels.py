"""AI-generated labels. Implicit: machine-readable metadata on every generated reply (content
attribute, provider, content id, model) as a response header and a field. Explicit: the visible
notice the web chat and the exports show."""

from __future__ import annotations

from urllib.parse import quote

CONTENT_ATTRIBUTE = "AI-generated"
HEADER = "X-AI-Label"
NOTICE = {
    "zh": "以上内容由人工智能生成",
    "en": "AI-generated content",
}


def ai_label(provider: str, content_id: str, model: str) -> dict[str, str]:
    """The implicit label of one reply."""
    return {"content_attribute": CONTENT_ATTRIBUTE, "provider": provider, "content_id": content_id, "model": model}


def header_value(label: dict[str, str]) -> str:
    """The label as one HTTP header value (non-ASCII percent-encoded, as RFC 8187 does)."""
    return "; ".join(f"{key.replace('_', '-')}={quote(value, safe='')}" for key, value in label.items())


def explicit_notice(provider: str) -> str:
    """The visible label, both languages: `AI-generated content · 以上内容由人工智能生成 · <provider>`."""
    return f"{NOTICE['en']} · {NOTICE['zh']} · {provider}"
