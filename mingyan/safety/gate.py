"""`Safety`: what the chat service calls — prompts screened before admission, replies guarded as
they stream. An observer (the app's: metrics and audit) hears of every flagged check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from mingyan.engine.base import EventStream, FinishReason, GenerationRequest, TokenEvent, Usage
from mingyan.safety.guarded import GuardedStream
from mingyan.safety.judge import Judge, JudgeMode, judged_verdict
from mingyan.safety.labels import ai_label
from mingyan.safety.moderator import Moderator, Verdict
from mingyan.safety.policy import Policy
from mingyan.safety.refusals import ContentFiltered, language_of

# (stage: "input" | "output" | "document" | "title", verdict, owner) for every check that matched something
SafetyObserver = Callable[[str, Verdict, str], None]


class RefusedStream:
    """The stream of a reply refused before generation: one `content_filter` finish, nothing else."""

    stage = "input"

    def __init__(self, refused: ContentFiltered) -> None:
        self.verdict = refused.verdict if isinstance(refused.verdict, Verdict) else None

    def __aiter__(self) -> AsyncIterator[TokenEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[TokenEvent]:
        yield TokenEvent("", FinishReason.CONTENT_FILTER, usage=Usage(prompt_tokens=0, completion_tokens=0))

    async def aclose(self) -> None:
        return None


class Safety:
    def __init__(
        self,
        moderator: Moderator,
        *,
        observer: SafetyObserver | None = None,
        provider: str = "mingyan",
        judge_mode: JudgeMode = "off",
    ) -> None:
        self.moderator = moderator
        self.observer = observer
        self.provider = provider  # named in the AI-generated label of every reply
        self.judge_mode = judge_mode  # what the model judge's verdicts do (safety/judge.py)

    @classmethod
    def from_settings(cls, settings: object, observer: SafetyObserver | None = None) -> Safety:
        provider = str(getattr(settings, "ai_provider", "mingyan"))
        judge_mode: JudgeMode = getattr(settings, "moderation_judge", "off")
        return cls(
            Moderator(Policy.from_settings(settings)), observer=observer, provider=provider, judge_mode=judge_mode
        )

    @property
    def judging(self) -> bool:
        """Whether prompts also go to the model judge (after the keyword pass)."""
        return self.judge_mode != "off" and self.enabled

    def label(self, content_id: str, model: str) -> dict[str, str]:
        """The implicit AI-generated label of the reply `content_id`."""
        return ai_label(self.provider, content_id, model)

    @property
    def enabled(self) -> bool:
        return self.moderator.enabled

    def screen(
        self, texts: Iterable[str], *, owner: str = "", param: str = "messages", stage: str = "input"
    ) -> Verdict:
        """The verdict on a prompt's texts (heard by the observer when something matched); raises
        ContentFiltered, worded in the prompt's language, when a matched category is blocked.
        `stage`: what the texts are (input: a prompt; document: an uploaded file; title)."""
        joined = "\n".join(texts)
        verdict = self.moderator.check(joined)
        if verdict.flagged and self.observer is not None:
            self.observer(stage, verdict, owner)
        if verdict.blocked:
            raise ContentFiltered(verdict.blocked[0], language_of(joined), param=param, verdict=verdict)
        return verdict

    async def judge_prompt(
        self, judge: Judge, texts: Iterable[str], *, owner: str = "", param: str = "messages"
    ) -> None:
        """The model judge's verdict on a prompt the keyword pass let through: heard by the observer
        (stage `judge`) when it names a checked category; ContentFiltered when the judge blocks and
        the policy blocks that category."""
        if not self.judging:
            return
        joined = "\n".join(texts)
        judged = await judge.classify(joined, user=owner, scope=owner)
        if judged.category is None:
            return
        action = self.moderator.policy.action(judged.category)
        if action == "off":
            return
        verdict = judged_verdict(judged.category, blocked=action == "block" and self.judge_mode == "block")
        if self.observer is not None:
            self.observer("judge", verdict, owner)
        if verdict.blocked:
            raise ContentFiltered(judged.category, language_of(joined), param=param, verdict=verdict)

    def guard(self, stream: EventStream, request: GenerationRequest) -> EventStream:
        """`stream`, held back and checked as it comes (unchanged when no category is checked)."""
        if not self.enabled:
            return stream
        owner = request.cache_scope

        def observe(stage: str, verdict: Verdict) -> None:
            if self.observer is not None:
                self.observer(stage, verdict, owner)

        return GuardedStream(
            stream,
            self.moderator,
            prompt_tokens=len(request.prompt_tokens),
            observer=observe,
        )


def stopped_by_policy(stream: object) -> tuple[str, bool] | None:
    """(category, stopped mid-reply) when the content policy ended `stream`, else None."""
    if isinstance(stream, GuardedStream | RefusedStream) and stream.verdict is not None:
        category = stream.verdict.category
        return (category, stream.stage == "output") if category is not None else None
    return None
