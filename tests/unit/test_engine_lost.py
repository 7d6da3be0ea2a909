"""A reply whose engine went away mid-stream (a Ray replica killed: EngineLost) is stored
`interrupted` with the text so far; any other engine failure stays an `error` as before.
Real HTTP (uvicorn in a thread) and real SQLite; the engine is the fake one, failing on cue."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.base import EventStream, GenerationRequest, TokenEvent
from mingyan.engine.fake import FakeEngine
from mingyan.errors import EngineError, EngineLost
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from tests.app_server import serve_app


class FailingEngine(FakeEngine):
    """Sends `pieces` of the fake reply, then raises `failure`."""

    def __init__(self, failure: Exception, pieces: int = 5) -> None:
        super().__init__(n_ctx=2048)
        self.failure, self.pieces = failure, pieces

    def generate(self, request: GenerationRequest) -> EventStream:
        return self._failing(super().generate(request))

    async def _failing(self, inner: EventStream) -> AsyncGenerator[TokenEvent, None]:
        sent = 0
        try:
            async for event in inner:
                if sent == self.pieces:
                    raise self.failure
                sent += 1
                yield event
        finally:
            await inner.aclose()


@pytest.fixture
def store(tmp_path) -> Iterator[ConversationStore]:
    url = default_url(tmp_path)
    upgrade(url)
    engine = open_database(url)
    yield ConversationStore(Database(engine))
    engine.dispose()


def reply_after(failure: Exception, store: ConversationStore) -> dict:
    engine = FailingEngine(failure)
    with serve_app(create_app(Settings(auto_titles=False), engine, store=store)) as url:
        with httpx.Client(base_url=url + "/api", timeout=30) as api:
            cid = api.post("/conversations", json={}).json()["id"]
            r = api.post(f"/conversations/{cid}/messages", json={"content": "hello there", "stream": False})
            assert r.status_code == 200, r.text
            return r.json()["message"]


def test_a_lost_engine_leaves_the_reply_interrupted_with_its_text(store: ConversationStore) -> None:
    message = reply_after(EngineLost("replica 1 went away mid-reply"), store)
    assert message["status"] == "interrupted", message
    assert message["content"] and "You said: hello there".startswith(message["content"])  # what was sent
    assert message["content"] != "You said: hello there" and "went away" in message["error"]
    stored = store.get_message("local", message["id"])
    assert (stored.status, stored.content) == ("interrupted", message["content"])


def test_another_engine_failure_is_still_an_error(store: ConversationStore) -> None:
    message = reply_after(EngineError("generation failed"), store)
    assert message["status"] == "error" and "You said: hello there".startswith(message["content"])
