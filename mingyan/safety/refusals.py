"""Refusals in the user's language, and the error a blocked prompt raises."""

from __future__ import annotations

from mingyan.errors import InvalidRequestError

CATEGORY_NAMES: dict[str, dict[str, str]] = {
    "zh": {
        "violence": "暴力伤害",
        "weapons": "武器和爆炸物",
        "self_harm": "自我伤害的方法",
        "fraud": "欺诈",
        "minors": "涉及未成年人的色情",
        "hate": "仇恨",
    },
    "en": {
        "violence": "violence against people",
        "weapons": "weapons and explosives",
        "self_harm": "methods of self-harm",
        "fraud": "fraud",
        "minors": "sexual content involving minors",
        "hate": "hate",
    },
}
_REFUSAL = {
    "zh": "抱歉，这个请求涉及{name}内容。根据本服务的内容安全规定，我不能提供帮助。",
    "en": "Sorry, this request involves {name}. Under this service's content rules I can't help with it.",
}
_REPLY_STOPPED = {
    "zh": "抱歉，这条回答涉及{name}内容，已根据本服务的内容安全规定停止。",
    "en": "Sorry, this reply touched on {name} and was stopped under this service's content rules.",
}
_SUPPORT = {
    "zh": "如果你正在经历困难，请联系身边信任的人，或拨打当地的心理援助热线。",
    "en": "If you are going through a hard time, please reach out to someone you trust or a local crisis line.",
}


def language_of(text: str) -> str:
    """'zh' when at least a fifth of the letters are CJK ideographs, else 'en'."""
    letters = cjk = 0
    for ch in text[:4000]:
        if ch.isalpha():
            letters += 1
            cjk += "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"
    return "zh" if letters and cjk * 5 >= letters else "en"


def refusal(category: str, language: str, *, stopped: bool = False) -> str:
    """The refusal shown to the user for `category` ('zh' or 'en'; anything else reads as English)."""
    lang = language if language in _REFUSAL else "en"
    name = CATEGORY_NAMES[lang].get(category, category)
    text = (_REPLY_STOPPED if stopped else _REFUSAL)[lang].format(name=name)
    return f"{text}{' ' if lang == 'en' else ''}{_SUPPORT[lang]}" if category == "self_harm" else text


class ContentFiltered(InvalidRequestError):
    """A prompt blocked by the content policy before anything was generated (HTTP 400, code
    `content_filter`, as Azure OpenAI answers)."""

    def __init__(self, category: str, language: str, *, param: str = "messages", verdict: object = None) -> None:
        super().__init__(refusal(category, language), param=param, code="content_filter")
        self.category = category
        self.language = language
        self.verdict = verdict  # the moderator's Verdict
