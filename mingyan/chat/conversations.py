"""Chatting inside a stored conversation: send, regenerate, edit; the server assembles the context.

Order of work for every reply, so that nothing a user typed is ever lost:
1. the context is assembled and checked (a request that cannot fit is refused; nothing written);
2. the user message (if any) is committed, then the assistant message, as `streaming`;
3. the engine admits the request (if it is busy, the assistant message ends `error`, the user's
   message stays, and the caller gets the busy error);
4. a `LiveReply` generates, saves as it goes, and ends `complete`, `stopped` or `error`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mingyan.chat.context import fit_context
from mingyan.chat.live import LiveReply, ReplyHub
from mingyan.chat.service import ChatService
from mingyan.chat.titles import make_title
from mingyan.engine.base import SamplingParams
from mingyan.errors import ConflictError, InvalidRequestError, MingyanError
from mingyan.safety.gate import RefusedStream
from mingyan.safety.refusals import ContentFiltered, language_of
from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import Conversation, Message

log = logging.getLogger(__name__)

SAMPLING_FIELDS = frozenset(f.name for f in dataclasses.fields(SamplingParams))


@dataclass(frozen=True)
class Exchange:
    """What a send/edit/regenerate started: the user's message (None for a regeneration) and the reply."""

    user_message: Message | None
    reply: LiveReply
    omitted_turns: int


def sampling_from(*layers: Mapping[str, Any] | None) -> SamplingParams:
    """Sampling settings: defaults, overridden by each layer in turn (conversation, then request)."""
    values: dict[str, Any] = {}
    for layer in layers:
        values.update({k: v for k, v in (layer or {}).items() if k in SAMPLING_FIELDS and v is not None})
    if "stop" in values:
        values["stop"] = tuple(values["stop"])
    return SamplingParams(**values)


class ConversationService:
    def __init__(self, store: ConversationStore, chat: ChatService, hub: ReplyHub, *, auto_titles: bool = True) -> None:
        self.store = store
        self.chat = chat
        self.hub = hub
        self.auto_titles = auto_titles
        self._background: set[asyncio.Task[None]] = set()

    async def send(
        self,
        owner: str,
        conversation_id: str,
        content: str,
        *,
        parent_id: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Exchange:
        """A new user message under `parent_id` (default: the current leaf), and its reply."""
        conversation = await self._run(self.store.get_conversation, owner, conversation_id)
        history = await self._run(self.store.path_to, owner, conversation_id, parent_id)
        self._refuse_live_parent(owner, history)
        return await self._reply(
            owner,
            conversation,
            history,
            content,
            parent_id=history[-1].id if history else None,
            settings=settings,
        )

    async def edit(
        self,
        owner: str,
        conversation_id: str,
        message_id: str,
        content: str,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> Exchange:
        """A new version of user message `message_id`: a sibling branch, and its reply."""
        conversation = await self._run(self.store.get_conversation, owner, conversation_id)
        path = await self._run(self.store.path_to, owner, conversation_id, message_id)
        if path[-1].role != "user":
            raise InvalidRequestError("only a user message can be edited", param="message_id")
        history = path[:-1]
        return await self._reply(
            owner,
            conversation,
            history,
            content,
            parent_id=history[-1].id if history else None,
            settings=settings,
        )

    async def regenerate(
        self,
        owner: str,
        conversation_id: str,
        message_id: str,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> Exchange:
        """Another reply to the user message `message_id` (or to the one an assistant `message_id` answered)."""
        conversation = await self._run(self.store.get_conversation, owner, conversation_id)
        path = await self._run(self.store.path_to, owner, conversation_id, message_id)
        if path[-1].role == "assistant":
            path = path[:-1]
        if not path or path[-1].role != "user":
            raise InvalidRequestError("there is no user message to answer here", param="message_id")
        return await self._reply(owner, conversation, path, None, parent_id=path[-1].id, settings=settings)

    async def delete(self, owner: str, conversation_id: str) -> None:
        """Stop the conversation's live replies, then delete it."""
        await self._run(self.store.get_conversation, owner, conversation_id)  # NotFound first
        replies = self.hub.for_conversation(owner, conversation_id)
        for reply in replies:
            reply.stop("stopped")
        for reply in replies:
            await reply.wait()
        await self._run(self.store.delete_conversation, owner, conversation_id)
        await self._run(self.chat.engine.forget, owner, conversation_id)  # its saved KV states

    async def close(self) -> None:
        """At shutdown: live replies end `interrupted` with their text saved; title jobs stop."""
        for task in list(self._background):
            task.cancel()
        await self.hub.shutdown()

    # ---- the one path every reply takes --------------------------------------------------------

    async def _reply(
        self,
        owner: str,
        conversation: Conversation,
        history: list[Message],
        user_text: str | None,
        *,
        parent_id: str | None,
        settings: Mapping[str, Any] | None,
    ) -> Exchange:
        sampling = sampling_from(conversation.settings, settings)
        turns = [{"role": m.role, "content": m.content} for m in history if m.role != "system"]
        if user_text is not None:
            turns.append({"role": "user", "content": user_text})
        language = language_of(turns[-1]["content"]) if turns else "en"
        try:
            self.chat.screen([turns[-1]["content"]] if turns and turns[-1]["role"] == "user" else [], owner=owner)
        except ContentFiltered as refused:  # stored as a refusal: the user's message, then the reply `refused`
            user_message, assistant = await self._store_turn(owner, conversation, user_text, parent_id)
            live = LiveReply(self.store, owner, assistant, language=language, label=self.chat.label(assistant.id))
            reply = self.hub.start(live, RefusedStream(refused))
            return Exchange(user_message, reply, 0)
        context = await fit_context(self.chat, conversation.system_prompt, turns, sampling.max_tokens, user=owner)
        request = self.chat.request(context.tokens, sampling, user=owner, scope=owner, label=conversation.id)
        user_message, assistant = await self._store_turn(
            owner,
            conversation,
            user_text,
            parent_id,
            sampling=_sampling_record(sampling),
            seed=sampling.seed,
            omitted_turns=context.omitted_turns or None,
        )
        try:
            stream = self.chat.stream(request)
        except MingyanError as exc:
            await self._run(self.store.finish_message, owner, assistant.id, "error", None, error=str(exc))
            raise
        live = LiveReply(
            self.store,
            owner,
            assistant,
            prompt_tokens=len(context.tokens),
            language=language,
            label=self.chat.label(assistant.id),
        )
        reply = self.hub.start(live, stream)
        if self.auto_titles and not conversation.title and user_text is not None and not history:
            self._in_background(self._title_after(reply, conversation.id, user_text))
        return Exchange(user_message, reply, context.omitted_turns)

    async def _store_turn(
        self, owner: str, conversation: Conversation, user_text: str | None, parent_id: str | None, **provenance: Any
    ) -> tuple[Message | None, Message]:
        """Commit the user's message (if any), then the assistant's, `streaming`."""
        user_message = None
        if user_text is not None:
            user_message = await self._run(
                self.store.add_message,
                owner,
                conversation.id,
                "user",
                user_text,
                parent_id,
                at_root=parent_id is None,
            )
            parent_id = user_message.id
        info = self.chat.engine.info
        assistant = await self._run(
            self.store.start_assistant_message,
            owner,
            conversation.id,
            parent_id,
            model_name=info.name,
            model_sha256=info.sha256,
            **provenance,
        )
        return user_message, assistant

    def _refuse_live_parent(self, owner: str, history: list[Message]) -> None:
        if history and self.hub.get(owner, history[-1].id) is not None:
            raise ConflictError(
                "the previous reply is still being generated: stop it or wait for it to finish",
                code="reply_in_progress",
            )

    # ---- titles --------------------------------------------------------------------------------

    async def _title_after(self, reply: LiveReply, conversation_id: str, user_text: str) -> None:
        """After the first exchange: a short title, unless the user named the conversation meanwhile."""
        final = await reply.wait()
        if final is None or final.status != "complete":
            return
        title = await make_title(self.chat, user_text, user=reply.owner, scope=reply.owner)
        await self._run(self.store.set_title_if_untitled, reply.owner, conversation_id, title)

    def _in_background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background job failed: %s", task.exception())

    @staticmethod
    async def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)


def _sampling_record(sampling: SamplingParams) -> dict[str, Any]:
    record = dataclasses.asdict(sampling)
    record["stop"] = list(sampling.stop)
    return record
