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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from mingyan.chat.attachments import Attached, Attachments
from mingyan.chat.context import Context, fit_context, reply_reserve
from mingyan.chat.live import LiveReply, ReplyHub
from mingyan.chat.service import ChatService
from mingyan.chat.titles import make_title
from mingyan.chat.tool_choice import reply_tools, stored_choice
from mingyan.chat.tool_loop import LoopSetup, ToolKit, ToolLoopReply, first_request, plain_turns
from mingyan.engine.base import GenerationRequest, SamplingParams
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
    def __init__(
        self,
        store: ConversationStore,
        chat: ChatService,
        hub: ReplyHub,
        *,
        auto_titles: bool = True,
        tools: ToolKit | None = None,
        attachments: Attachments | None = None,
        chats: Callable[[str], Awaitable[ChatService]] | None = None,
    ) -> None:
        """`chats(model)`: the chat service of a conversation's model (default: `chat` for all)."""
        self.attachments = attachments  # files attached to messages (None: not offered)
        self.store = store
        self.chat = chat
        self._chats = chats
        self.hub = hub
        self.auto_titles = auto_titles
        self.tools = tools  # MCP tool servers (None: no tool loops)
        self._background: set[asyncio.Task[None]] = set()

    async def send(
        self,
        owner: str,
        conversation_id: str,
        content: str,
        *,
        parent_id: str | None = None,
        settings: Mapping[str, Any] | None = None,
        tools: Sequence[str] | None = None,
        file_ids: Sequence[str] = (),
    ) -> Exchange:
        """A new user message under `parent_id` (default: the current leaf), and its reply; the
        passages of the owner's files `file_ids` go into its prompt (see chat/attachments.py).
        `tools`: the tool servers of this reply, stored as the conversation's choice (None: the
        stored choice; chat/tool_choice.py)."""
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
            tools=tools,
            file_ids=file_ids,
        )

    async def edit(
        self,
        owner: str,
        conversation_id: str,
        message_id: str,
        content: str,
        *,
        settings: Mapping[str, Any] | None = None,
        tools: Sequence[str] | None = None,
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
            tools=tools,
        )

    async def regenerate(
        self,
        owner: str,
        conversation_id: str,
        message_id: str,
        *,
        settings: Mapping[str, Any] | None = None,
        tools: Sequence[str] | None = None,
    ) -> Exchange:
        """Another reply to the user message `message_id` (or to the one an assistant `message_id` answered)."""
        conversation = await self._run(self.store.get_conversation, owner, conversation_id)
        path = await self._run(self.store.path_to, owner, conversation_id, message_id)
        while path and path[-1].role in ("assistant", "tool"):  # back over a tool loop's steps too
            path = path[:-1]
        if not path or path[-1].role != "user":
            raise InvalidRequestError("there is no user message to answer here", param="message_id")
        return await self._reply(owner, conversation, path, None, parent_id=path[-1].id, settings=settings, tools=tools)

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
        tools: Sequence[str] | None = None,
        file_ids: Sequence[str] = (),
    ) -> Exchange:
        sampling = sampling_from(conversation.settings, settings)
        chat = await self._chats(conversation.model) if self._chats is not None else self.chat
        asked = user_text if user_text is not None else _last_user_text(history)
        language = language_of(asked) if asked else "en"
        try:
            await chat.check_prompt([asked] if asked is not None else [], owner=owner)
        except ContentFiltered as refused:  # stored as a refusal: the user's message, then the reply `refused`
            user_message, assistant = await self._store_turn(chat, owner, conversation, user_text, parent_id)
            refusal = LiveReply(self.store, owner, assistant, language=language, label=chat.label(assistant.id))
            return Exchange(user_message, self.hub.start(refusal, RefusedStream(refused)), 0)
        attached = await self._attach(chat, owner, file_ids, user_text, sampling.max_tokens)
        prompt_text = user_text
        if attached is not None and self.attachments is not None and user_text is not None:
            prompt_text = self.attachments.user_turn(user_text, attached)
        context, request, loop = await self._prepare(chat, owner, conversation, history, prompt_text, sampling, tools)
        await self._keep_choice(owner, conversation, tools)
        user_message, assistant = await self._store_turn(
            chat,
            owner,
            conversation,
            user_text,
            parent_id,
            sampling=_sampling_record(sampling),
            seed=sampling.seed,
            omitted_turns=context.omitted_turns or None,
        )
        try:
            stream = chat.stream(request)
        except MingyanError as exc:
            await self._run(self.store.finish_message, owner, assistant.id, "error", None, error=str(exc))
            raise
        kw: dict[str, Any] = {
            "prompt_tokens": len(context.tokens),
            "language": language,
            "label": chat.label(assistant.id),
        }
        if loop is not None:
            loop.track = lambda message_id: self.hub.track(reply, message_id)
            live: LiveReply = ToolLoopReply(self.store, owner, assistant, loop, **kw)
        else:
            live = LiveReply(self.store, owner, assistant, **kw)
        if attached is not None and self.attachments is not None:
            live.finishing = partial(self.attachments.record, attached=attached)
        reply = self.hub.start(live, stream)
        if self.auto_titles and not conversation.title and user_text is not None and not history:
            self._in_background(self._title_after(chat, reply, conversation.id, user_text))
        return Exchange(user_message, reply, context.omitted_turns)

    async def _store_turn(
        self,
        chat: ChatService,
        owner: str,
        conversation: Conversation,
        user_text: str | None,
        parent_id: str | None,
        **provenance: Any,
    ) -> tuple[Message | None, Message]:
        """Commit the user's message (if any) and the assistant's, `streaming`, together."""
        info = chat.engine.info
        return await self._run(
            self.store.start_turn,
            owner,
            conversation.id,
            user_text,
            parent_id,
            at_root=user_text is not None and parent_id is None,
            model_name=info.name,
            model_sha256=info.sha256,
            **provenance,
        )

    async def _prepare(
        self,
        chat: ChatService,
        owner: str,
        conversation: Conversation,
        history: list[Message],
        user_text: str | None,
        sampling: SamplingParams,
        asked: Sequence[str] | None,
    ) -> tuple[Context, GenerationRequest, LoopSetup | None]:
        """The context and the engine request (with tools: the tool loop's setup and first request)."""
        tools = await reply_tools(self.tools, conversation.settings, asked)
        if tools:
            if self.tools is None:
                raise InvalidRequestError("this server has no tool servers", param="tools")
            loop, request = await first_request(
                chat, self.tools, tools, conversation.system_prompt, history, user_text, sampling,
                user=owner, scope=owner, label=conversation.id,
            )  # fmt: skip
            return Context([], list(request.prompt_tokens), 0), request, loop
        turns = plain_turns(history)
        if user_text is not None:
            turns.append({"role": "user", "content": user_text})
        context = await fit_context(chat, conversation.system_prompt, turns, sampling.max_tokens, user=owner)
        request = chat.request(context.tokens, sampling, user=owner, scope=owner, label=conversation.id)
        return context, request, None

    async def _keep_choice(self, owner: str, conversation: Conversation, asked: Sequence[str] | None) -> None:
        """A request's own `tools` become the conversation's stored choice (chat/tool_choice.py)."""
        changed = stored_choice(conversation.settings, asked)
        if changed is not None:
            await self._run(self.store.update_conversation, owner, conversation.id, settings=changed)

    async def _attach(
        self, chat: ChatService, owner: str, file_ids: Sequence[str], text: str | None, max_tokens: int | None
    ) -> Attached | None:
        """With files attached: their passages (half the context at most) for the new user turn."""
        if not file_ids or text is None:
            return None
        if self.attachments is None:
            raise InvalidRequestError("This server does not take files.", param="file_ids")
        n_ctx = chat.engine.info.n_ctx
        budget = (n_ctx - reply_reserve(n_ctx, max_tokens)) // 2
        attached = await self.attachments.prepare(owner, file_ids, text, budget)
        # Screened on upload, and again here under today's policy (a bank edited since then counts).
        chat.screen([p.text for p in attached.passages], owner=owner, param="file_ids", stage="document")
        return attached

    def _refuse_live_parent(self, owner: str, history: list[Message]) -> None:
        if history and self.hub.get(owner, history[-1].id) is not None:
            raise ConflictError(
                "the previous reply is still being generated: stop it or wait for it to finish",
                code="reply_in_progress",
            )

    # ---- titles --------------------------------------------------------------------------------

    async def _title_after(self, chat: ChatService, reply: LiveReply, conversation_id: str, user_text: str) -> None:
        """After the first exchange: a short title, unless the user named the conversation meanwhile."""
        final = await reply.wait()
        if final is None or final.status != "complete":
            return
        title = await make_title(chat, user_text, user=reply.owner, scope=reply.owner)
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


def _last_user_text(history: list[Message]) -> str | None:
    """What a regeneration answers: the last message, when it is the user's."""
    return history[-1].content if history and history[-1].role == "user" else None
