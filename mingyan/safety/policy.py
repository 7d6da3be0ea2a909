"""The per-deployment policy: for each category, `off` (not checked), `log` (counted and audited,
let through) or `block` (refused)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Action = Literal["off", "log", "block"]
ACTIONS: tuple[Action, ...] = ("off", "log", "block")

# mingyan's categories, in a fixed order (Settings fields are `moderation_<category>`).
CATEGORIES: tuple[str, ...] = ("violence", "weapons", "self_harm", "fraud", "minors", "hate")

# How each category shows in OpenAI's /v1/moderations shape.
OPENAI_CATEGORY: dict[str, str] = {
    "violence": "violence",
    "weapons": "illicit/violent",
    "self_harm": "self-harm/instructions",
    "fraud": "illicit",
    "minors": "sexual/minors",
    "hate": "hate",
}


@dataclass(frozen=True)
class Policy:
    actions: Mapping[str, Action]

    def action(self, category: str) -> Action:
        return self.actions.get(category, "off")

    @property
    def checked(self) -> tuple[str, ...]:
        return tuple(c for c in CATEGORIES if self.action(c) != "off")

    @property
    def enabled(self) -> bool:
        return bool(self.checked)

    @classmethod
    def uniform(cls, action: Action) -> Policy:
        return cls({c: action for c in CATEGORIES})

    @classmethod
    def from_settings(cls, settings: object) -> Policy:
        """From the Settings fields `moderation_<category>`."""
        return cls({c: getattr(settings, f"moderation_{c}") for c in CATEGORIES})
