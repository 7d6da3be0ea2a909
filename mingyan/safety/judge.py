"""The model judge: an optional second opinion on a prompt, after the keyword pass.

The judge asks a model (the one serving the request) which of the policy's categories a prompt
falls in, or `safe`. The verdict is one label, its shape fixed by a GBNF grammar (so the model can
only answer a known label), decoded greedily in a few tokens. It runs on prompts only (input
screening): replies are checked by the keyword guard as they stream.

What happens with a verdict is the deployment's `--moderation-judge` setting: `off` (the judge is
not asked), `log` (a flagged prompt is counted and audited, and let through) or `block` (a flagged
prompt is refused when the policy blocks its category; a category the policy only logs is logged,
one it leaves `off` is ignored). A judge that fails (engine busy, prompt too long for it) lets the
prompt through: the keyword pass has already run, and the failure is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mingyan.engine.base import Engine, FinishReason, GenerationRequest, SamplingParams
from mingyan.errors import MingyanError
from mingyan.formats.grammar import Constraint, gbnf_literal
from mingyan.safety.moderator import Verdict
from mingyan.safety.policy import CATEGORIES

log = logging.getLogger(__name__)

JudgeMode = Literal["off", "log", "block"]
SAFE = "safe"
MAX_JUDGED_CHARS = 3000  # longer prompts are judged on their beginning and end
MAX_VERDICT_TOKENS = 8
JUDGE_LABEL = "moderation-judge"  # the cache label of judging requests

# Renders chat messages into prompt tokens with the judging model's chat template.
Renderer = Callable[[Sequence[Mapping[str, str]]], Awaitable[list[int]]]

# What each label means to the judge (the label itself is the policy's category name).
_DESCRIPTIONS = {
    "violence": "asks how to kill, hurt, poison, kidnap or torture people, or to plan an attack on them",
    "weapons": "asks how to make, obtain or illegally modify weapons, explosives, or chemical, "
    "biological or nuclear weapons",
    "self_harm": "asks for methods of suicide or self-injury, or encourages them",
    "fraud": "asks how to scam, phish, forge documents, launder money, steal accounts or cards",
    "minors": "asks for sexual content involving children or how to approach children sexually",
    "hate": "asks to demean, dehumanise, threaten or incite violence against a group of people",
}
_INSTRUCTION = (
    "You are a content-safety classifier. Read the user's message (in any language) and answer "
    "with exactly one label.\n{labels}\n"
    "safe: anything else, including questions about these topics for history, news, law, medicine, "
    "safety, prevention, education, research or fiction that does not teach how to do harm.\n"
    "Answer with the label only."
)


def judge_grammar(categories: Sequence[str]) -> Constraint:
    """A grammar whose only sentences are the labels: `safe` or one of `categories`."""
    labels = " | ".join(gbnf_literal(label) for label in (SAFE, *categories))
    return Constraint(f"root ::= {labels}\n")


def judge_messages(text: str, categories: Sequence[str]) -> list[dict[str, str]]:
    """The judging conversation: the instruction as the system turn, the prompt as the user turn."""
    labels = "\n".join(f"{c}: {_DESCRIPTIONS[c]}" for c in categories)
    if len(text) > MAX_JUDGED_CHARS:
        half = MAX_JUDGED_CHARS // 2
        text = f"{text[:half]}\n…\n{text[-half:]}"
    return [
        {"role": "system", "content": _INSTRUCTION.format(labels=labels)},
        {"role": "user", "content": f"Message to classify:\n\n{text}"},
    ]


@dataclass(frozen=True)
class JudgeVerdict:
    category: str | None  # a policy category, or None for `safe` (and when the judge failed)
    label: str  # what the model answered ("" when it failed)
    seconds: float  # wall time of the judgement
    failed: bool = False


class Judge:
    """Classifies prompts with `engine`, whose chat template `render` applies."""

    def __init__(self, engine: Engine, render: Renderer, categories: Sequence[str] = CATEGORIES) -> None:
        self.engine = engine
        self.render = render
        self.categories = tuple(c for c in categories if c in _DESCRIPTIONS)
        self.constraint = judge_grammar(self.categories)

    async def classify(self, text: str, *, user: str = "", scope: str = "") -> JudgeVerdict:
        started = time.perf_counter()
        if not self.categories or not text.strip():
            return JudgeVerdict(None, SAFE, 0.0)
        try:
            label = await self._ask(text, user=user, scope=scope)
        except MingyanError as error:  # busy, too long: the keyword pass stands alone
            log.warning("moderation judge failed, prompt let through: %s", error)
            return JudgeVerdict(None, "", time.perf_counter() - started, failed=True)
        category = label if label in self.categories else None
        return JudgeVerdict(category, label, time.perf_counter() - started)

    async def _ask(self, text: str, *, user: str, scope: str) -> str:
        tokens = await self.render(judge_messages(text, self.categories))
        sampling = SamplingParams(temperature=0.0, max_tokens=MAX_VERDICT_TOKENS, constraint=self.constraint)
        # The owner's own cache scope: the judged text is theirs (forgotten with their other states).
        request = GenerationRequest(tuple(tokens), sampling, user=user, cache_scope=scope, cache_label=JUDGE_LABEL)
        parts: list[str] = []
        finish: FinishReason | None = None
        stream = self.engine.generate(request)
        try:
            async for event in stream:
                parts.append(event.text)
                if event.finish_reason is not None:
                    finish = event.finish_reason
                    break
        finally:
            await stream.aclose()
        if finish not in (FinishReason.STOP, FinishReason.LENGTH):
            raise MingyanError(f"the judge's reply ended with {finish}")
        return "".join(parts).strip()


def judged_verdict(category: str, *, blocked: bool) -> Verdict:
    """The judge's finding as the moderator's Verdict (scores: 1.0 for the named category)."""
    categories = {c: c == category for c in CATEGORIES}
    return Verdict(
        flagged=True,
        categories=categories,
        scores={c: 1.0 if hit else 0.0 for c, hit in categories.items()},
        blocked=(category,) if blocked else (),
    )
