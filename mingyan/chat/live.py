"""Replies being generated right now: owned by the server, not by the HTTP request that asked.

A `LiveReply` consumes the engine's stream in its own task, so a client that disconnects loses
nothing: the reply is generated to the end and saved. While it runs, its text so far is saved
at least every `save_interval_s`, and any number of clients can attach: each first gets the text
so far, then every new piece, then the finished message. `ReplyHub` finds a live reply by
message id (checking the owner) and stops them all at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from mingyan.engine.base import EventStream, FinishReason, TokenEvent, Usage
from mingyan.errors import EngineLost, MingyanError
from mingyan.safety.gate import stopped_by_policy
from mingyan.safety.refusals import refusal
from mingyan.store.conversations import ConversationStore
from mingyan.store.errors import NotFound, is_disk_full
from mingyan.store.tables import Message

log = logging.getLogger(__name__)

SAVE_INTERVAL_S = 0.5
ALIVE_S = 30.0  # a running reply is saved at least this often, even when its text has not grown
STALE_S = 4 * ALIVE_S  # a `streaming` message not saved for this long was cut off (its process is gone)
FINISH_RETRY_S = 60.0  # how long the final save of a reply is retried while the database is away
DATABASE_AWAY = (OperationalError, InterfaceError)  # connection lost or refused (a restart, a network cut)


@dataclass(frozen=True)
class ReplyEvent:
    """`snapshot` (text so far, on attach), `delta` (new text), or `done` (the saved message)."""

    type: str
    text: str = ""
    message: Message | None = None


@dataclass
class _Subscriber:
    queue: asyncio.Queue[ReplyEvent] = field(default_factory=asyncio.Queue)


class LiveReply:
    """One assistant message being generated; see the module docstring."""

    def __init__(
        self,
        store: ConversationStore,
        owner: str,
        message: Message,
        *,
        prompt_tokens: int = 0,
        save_interval_s: float = SAVE_INTERVAL_S,
        language: str = "en",
        label: dict[str, str] | None = None,
    ) -> None:
        self.label = label  # the implicit AI-generated label, saved with the message
        self.store = store
        self.language = language  # the user's ("zh" or "en"): a refusal is worded in it
        self.owner = owner
        self.message = message
        self.prompt_tokens = prompt_tokens
        self.save_interval_s = save_interval_s
        self._parts: list[str] = []
        self._finish_callbacks: list[Callable[[LiveReply], None]] = []
        self.usage: Usage | None = None  # set when the reply ends (counted pieces if it was cut short)
        self._saved_len = 0
        self._subscribers: list[_Subscriber] = []
        self._stop_status: str | None = None
        self._stop_fields: dict[str, Any] = {}  # saved with the stopped message (who stopped it)
        self._task: asyncio.Task[Message | None] | None = None
        self._phase = "waiting"  # then "generating", then "saving" (the end: not to be cut)
        self.final: Message | None = None
        # Run after the final save, before `done` is published (attachments store citations here).
        self.finishing: Callable[[LiveReply], Awaitable[None]] | None = None
        self.citations: list[Any] = []  # what `finishing` found the reply cites, sent with `done`

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def start(self, stream: EventStream, on_done: Callable[[LiveReply], object]) -> None:
        self._task = asyncio.create_task(self._run(stream), name=f"reply-{self.id}")
        self._task.add_done_callback(lambda _: on_done(self))

    def on_finish(self, callback: Callable[[LiveReply], None]) -> None:
        """Call `callback(self)` once the reply has ended and been saved (at once if it has)."""
        if self._task is not None and self._task.done():
            callback(self)
        else:
            self._finish_callbacks.append(callback)

    async def wait(self) -> Message | None:
        """The finished, saved message (None if its conversation was deleted meanwhile).

        Waits for it if need be; cancelling the waiter never cancels the reply."""
        assert self._task is not None
        return await asyncio.shield(self._task)

    @property
    def pieces(self) -> int:
        """Pieces of text generated so far (about one per token)."""
        return sum(1 for part in self._parts if part)

    def stop(self, status: str = "stopped", **fields: Any) -> None:
        """End generation now; the text so far is saved with `status` (stopped, or interrupted at
        shutdown) and `fields` (provenance: `moderation="admin_stop"` when an administrator stopped it)."""
        # Once, and only while generating: a reply already saving its end finishes as it is (cancelling
        # the final save would leave its waiters a CancelledError); one not yet begun never generates.
        if self._stop_status is None and self._task is not None and self._phase != "saving":
            self._stop_status, self._stop_fields = status, fields
            if self._phase == "generating":
                self._task.cancel()

    async def events(self) -> AsyncIterator[ReplyEvent]:
        """The text so far, then new text as it comes, then the saved message. Leaving early is fine."""
        if self._task is not None and self._task.done():
            yield ReplyEvent("done", message=self.final)
            return
        subscriber = _Subscriber()
        self._subscribers.append(subscriber)
        try:
            yield ReplyEvent("snapshot", text=self.text)
            while True:
                event = await subscriber.queue.get()
                yield event
                if event.type == "done":
                    return
        finally:
            self._subscribers.remove(subscriber)

    def _publish(self, event: ReplyEvent) -> None:
        for subscriber in self._subscribers:
            subscriber.queue.put_nowait(event)

    def _begin(self) -> None:
        """From now on a stop cancels the generation; stopped before it began, it never generates."""
        if self._stop_status is not None:
            raise asyncio.CancelledError
        self._phase = "generating"

    async def _run(self, stream: EventStream) -> Message | None:
        started = time.monotonic()
        first_token_s: float | None = None
        finish: TokenEvent | None = None
        status, error = "complete", None
        saver = asyncio.create_task(self._save_periodically())
        try:
            self._begin()
            async for event in stream:
                if event.text:
                    if first_token_s is None:
                        first_token_s = time.monotonic() - started
                    self._parts.append(event.text)
                    self._publish(ReplyEvent("delta", text=event.text))
                if event.finish_reason is not None:
                    finish = event
        except asyncio.CancelledError:
            status = self._stop_status or "stopped"
        except EngineLost as exc:  # the engine's process died (a Ray replica): the text so far is kept
            status, error = "interrupted", str(exc)
        except MingyanError as exc:
            status, error = "error", str(exc)
        except Exception as exc:  # the reply must still be closed and saved
            log.exception("reply %s failed", self.id)
            status, error = "error", f"internal error: {type(exc).__name__}"
        finally:
            self._phase = "saving"
            saver.cancel()
            await stream.aclose()
        if finish is None and status == "complete":
            status, error = "error", "the engine stream ended without finishing"
        content, extra = self.text, _usage_fields(finish, first_token_s, time.monotonic() - started)
        if "completion_tokens" not in extra and self.pieces:  # stopped or cut off: the tokens it had
            extra["completion_tokens"] = self.pieces
        extra["ai_label"] = self.label
        if status == "complete" and (policy := stopped_by_policy(stream)) is not None:  # a refusal replaces it
            category, midway = policy
            status, content, extra["moderation"] = "refused", refusal(category, self.language, stopped=midway), category
        try:
            self.final = await self._save_final(
                status, _finish_reason(finish, status), content=content, error=error, **extra
            )
        except NotFound:
            log.info("reply %s: its conversation was deleted while it ran", self.id)
        except DATABASE_AWAY:
            log.error("reply %s: the database stayed away; the next start marks it interrupted", self.id)
        if self.finishing is not None and self.final is not None:
            try:
                await self.finishing(self)
            except Exception:
                log.exception("reply %s: finishing failed", self.id)
        self.usage = (
            finish.usage
            if finish is not None and finish.usage is not None
            else Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.pieces)
        )
        self._publish(ReplyEvent("done", message=self.final))
        self._notify()
        return self.final

    def _notify(self) -> None:
        for callback in self._finish_callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("reply %s: finish callback failed", self.id)

    async def _save_final(self, status: str, finish_reason: str | None, **fields: Any) -> Message:
        """The final save, retried while the database is away (an UPDATE: repeating it is harmless)."""
        deadline, pause = time.monotonic() + FINISH_RETRY_S, 0.25
        if self._stop_status is not None and status == self._stop_status:
            fields = {**fields, **self._stop_fields}
        while True:
            try:
                return await asyncio.to_thread(
                    self.store.finish_message, self.owner, self.id, status, finish_reason, **fields
                )
            except DATABASE_AWAY as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("reply %s: %s; saving again in %.1f s", self.id, _why(exc), pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 4.0)

    async def _save_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        saved_at = loop.time()
        while True:
            await asyncio.sleep(self.save_interval_s)
            text = self.text
            # Saved when it grew, and at least every ALIVE_S: other server processes on the same
            # database tell a running reply from one whose process died by its updated_at.
            if len(text) != self._saved_len or loop.time() - saved_at >= ALIVE_S:
                try:
                    await asyncio.to_thread(self.store.save_partial, self.owner, self.id, text, tokens=self.pieces)
                    self._saved_len, saved_at = len(text), loop.time()
                except NotFound:  # the conversation was deleted while its reply ran
                    self.stop("stopped")
                    return
                except DATABASE_AWAY as exc:  # a restart, a full disk: the text stays in memory for the next save
                    log.warning("reply %s: %s; partial save skipped", self.id, _why(exc))


def _why(exc: BaseException) -> str:
    return "the database's disk is full" if is_disk_full(exc) else "the database is away"


def _finish_reason(finish: TokenEvent | None, status: str) -> str | None:
    if finish is not None and finish.finish_reason is not None:
        return finish.finish_reason.value
    return FinishReason.CANCELLED.value if status in ("stopped", "interrupted") else None


def _usage_fields(finish: TokenEvent | None, ttft_s: float | None, duration_s: float) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ttft_ms": None if ttft_s is None else round(ttft_s * 1000),
        "duration_ms": round(duration_s * 1000),
    }
    if finish is not None and finish.usage is not None:
        usage = finish.usage
        fields.update(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
        )
    return fields


class ReplyHub:
    """The live replies of one app, by message id."""

    def __init__(self) -> None:
        self._replies: dict[str, LiveReply] = {}

    def start(self, reply: LiveReply, stream: EventStream) -> LiveReply:
        self._replies[reply.id] = reply
        reply.start(stream, on_done=self._forget)
        return reply

    def track(self, reply: LiveReply, message_id: str) -> None:
        """Find `reply` by `message_id` too (a tool loop's later messages)."""
        self._replies[message_id] = reply

    def _forget(self, reply: LiveReply) -> None:
        for key in [k for k, r in self._replies.items() if r is reply]:
            del self._replies[key]

    def _unique(self) -> list[LiveReply]:
        return list({id(r): r for r in self._replies.values()}.values())

    def get(self, owner: str, message_id: str) -> LiveReply | None:
        """The live reply, or None if it has finished. Another owner's reply is None too."""
        reply = self._replies.get(message_id)
        return reply if reply is not None and reply.owner == owner else None

    def find(self, message_id: str) -> LiveReply | None:
        """The live reply of any owner (for administrators), or None if it is not running here."""
        return self._replies.get(message_id)

    def message_ids(self) -> list[str]:
        """The ids of the messages being generated here (a tool loop's current and earlier ones)."""
        return list(self._replies)

    def for_owner(self, owner: str) -> list[LiveReply]:
        return [r for r in self._unique() if r.owner == owner]

    def for_conversation(self, owner: str, conversation_id: str) -> list[LiveReply]:
        return [r for r in self._unique() if r.owner == owner and r.message.conversation_id == conversation_id]

    def __len__(self) -> int:
        return len(self._unique())

    async def shutdown(self) -> None:
        """Stop every live reply and wait until each has saved its text as `interrupted`."""
        replies = self._unique()
        for reply in replies:
            reply.stop("interrupted")
        for reply in replies:
            try:
                await reply.wait()
            except Exception:
                log.exception("reply %s did not close cleanly", reply.id)
