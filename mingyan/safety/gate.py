"""`Safety`: what the chat service calls — prompts screened before admission, replies guarded as
they stream. An observer (the app's: metrics and audit) hears of every flagged check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from mingyan.engine.base import Embedder, EventStream, FinishReason, GenerationRequest, TokenEvent, Usage
from mingyan.safety.classifier import ClassifierWeights, SafetyClassifier, shipped_weights
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
        classifier: SafetyClassifier | None = None,
        classifier_mode: JudgeMode = "off",
    ) -> None:
        self.moderator = moderator
        self.observer = observer
        self.provider = provider  # named in the AI-generated label of every reply
        self.judge_mode = judge_mode  # what the model judge's verdicts do (safety/judge.py)
        self.classifier = classifier  # the trained classifier (safety/classifier.py), when turned on
        self.classifier_mode: JudgeMode = classifier_mode if classifier is not None else "off"

    @classmethod
    def from_settings(
        cls, settings: object, observer: SafetyObserver | None = None, embedder: Embedder | None = None
    ) -> Safety:
        """The deployment's safety; ClassifierMismatch (at start-up) when the classifier is turned on
        without the embedding model its weights were trained on."""
        provider = str(getattr(settings, "ai_provider", "mingyan"))
        judge_mode: JudgeMode = getattr(settings, "moderation_judge", "off")
        classifier_mode: JudgeMode = getattr(settings, "moderation_classifier", "off")
        classifier = (
            SafetyClassifier(ClassifierWeights.load(shipped_weights()), embedder) if classifier_mode != "off" else None
        )
        return cls(
            Moderator(Policy.from_settings(settings)),
            observer=observer,
            provider=provider,
            judge_mode=judge_mode,
            classifier=classifier,
            classifier_mode=classifier_mode,
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
        self._model_found("judge", self.judge_mode, judged.category, joined, owner=owner, param=param)

    async def classify_prompt(self, texts: Sequence[str], *, owner: str = "", param: str = "messages") -> None:
        """The trained classifier's verdict on a prompt the keyword pass let through (one embedding
        call; the work runs on the embedder's thread): heard by the observer (stage `classifier`) when
        it names a checked category; ContentFiltered when it blocks and the policy blocks that category."""
        if self.classifier is None or self.classifier_mode == "off" or not self.enabled:
            return
        found = await self.classifier.classify(texts, user=owner)
        self._model_found(
            "classifier", self.classifier_mode, found.category, "\n".join(texts), owner=owner, param=param
        )

    def _model_found(
        self, stage: str, mode: JudgeMode, category: str | None, joined: str, *, owner: str, param: str
    ) -> None:
        """What a model stage's `category` (None: nothing found) does under the policy and `mode`."""
        if category is None:
            return
        action = self.moderator.policy.action(category)
        if action == "off":
            return
        verdict = judged_verdict(category, blocked=action == "block" and mode == "block")
        if self.observer is not None:
            self.observer(stage, verdict, owner)
        if verdict.blocked:
            raise ContentFiltered(category, language_of(joined), param=param, verdict=verdict)

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
