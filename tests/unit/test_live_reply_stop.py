"""Stopping a live reply (as SIGTERM's drain does) at the edges of its life, on real SQLite: stopped
while its final save runs, it finishes as it was (the save is not cut, its waiters get the message,
never a CancelledError); stopped before it began, it is saved `interrupted` without generating."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mingyan.chat.live import LiveReply
from mingyan.engine.base import FinishReason, TokenEvent, Usage
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade

OWNER = "alice"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ConversationStore]:
    url = default_url(tmp_path)
    upgrade(url)
    engine = open_database(url)
    yield ConversationStore(Database(engine))
    engine.dispose()


def new_reply(store: ConversationStore) -> LiveReply:
    conversation = store.create_conversation(OWNER)
    _, message = store.start_turn(OWNER, conversation.id, "Say hello.")
    return LiveReply(store, OWNER, message)


async def words(reply: LiveReply, stop_at_end: bool, generated: list[str]) -> AsyncIterator[TokenEvent]:
    """An engine's stream of two pieces; `stop_at_end`: once its last piece is out, the reply is
    stopped from outside (as the drain does) at its next pause, which is its final save."""
    for text in ("Hello", " there."):
        generated.append(text)
        yield TokenEvent(text)
    yield TokenEvent("", finish_reason=FinishReason.STOP, usage=Usage(prompt_tokens=3, completion_tokens=2))
    if stop_at_end:
        asyncio.get_running_loop().call_soon(reply.stop, "interrupted")


def test_a_stop_during_the_final_save_lets_the_reply_finish(sqlite_store: ConversationStore) -> None:
    async def scenario() -> None:
        reply, generated = new_reply(sqlite_store), []
        reply.start(words(reply, True, generated), on_done=lambda _: None)
        final = await reply.wait()  # before the fix: asyncio.CancelledError
        assert final is not None and (final.status, final.content) == ("complete", "Hello there.")
        reply.stop("interrupted")  # and later stops change nothing
        assert (await reply.wait()) is final

        assert sqlite_store.get_message(OWNER, reply.id).status == "complete"

    asyncio.run(scenario())


def test_a_reply_stopped_before_it_began_is_saved_interrupted(sqlite_store: ConversationStore) -> None:
    async def scenario() -> None:
        reply, generated = new_reply(sqlite_store), []
        reply.start(words(reply, False, generated), on_done=lambda _: None)
        reply.stop("interrupted")  # its task has not run yet
        final = await reply.wait()
        assert final is not None and (final.status, final.content) == ("interrupted", "")
        assert generated == []
        assert sqlite_store.get_message(OWNER, reply.id).status == "interrupted"

    asyncio.run(scenario())
