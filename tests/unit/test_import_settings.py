"""POST /api/import checks a conversation's settings with the API's own rules (sampling.py),
over real HTTP on SQLite and PostgreSQL: a bad value refuses the whole file, names where, and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import Conversation, Message
from tests.app_server import serve_app

STAMP = "2024-05-01T12:00:00.000000Z"


@pytest.fixture
def client(store: ConversationStore) -> Iterator[httpx.Client]:
    with serve_app(create_app(Settings(auto_titles=False), FakeEngine(n_ctx=2048), store=store)) as base:
        yield httpx.Client(base_url=base, timeout=60)


def export_file(settings: Any) -> bytes:
    message = {"id": "m1", "role": "user", "content": "hello", "created_at": STAMP, "updated_at": STAMP}
    good = {
        "id": "c0",
        "title": "fine",
        "settings": {"temperature": 0.5},
        "created_at": STAMP,
        "updated_at": STAMP,
        "messages": [],
    }
    bad = {
        "id": "c1",
        "title": "imported",
        "settings": settings,
        "created_at": STAMP,
        "updated_at": STAMP,
        "messages": [message],
        "current_leaf_id": "m1",
    }
    doc = {"format": "mingyan-conversations", "version": 1, "conversations": [good, bad]}
    return json.dumps(doc).encode()


def rows(store: ConversationStore) -> tuple[int, int]:
    with store.reads() as session:
        return (
            session.scalar(select(func.count()).select_from(Conversation)),
            session.scalar(select(func.count()).select_from(Message)),
        )


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"temperature": 99}, "settings.temperature"),
        ({"temperature": -5}, "settings.temperature"),
        ({"temperature": "hot"}, "settings.temperature"),
        ({"top_k": -5}, "settings.top_k"),
        ({"min_p": 5}, "settings.min_p"),
        ({"repeat_penalty": 0}, "settings.repeat_penalty"),
        ({"max_tokens": -1}, "settings.max_tokens"),
        ({"stop": [1, 2]}, "settings.stop[0]"),
        ({"mirostat": 2}, "settings.mirostat"),
        ({"seed": 2**63}, "settings.seed"),
        ({"seed": -1}, "settings.seed"),
        ({"tools": ["no spaces allowed"]}, "settings.tools[0]"),
        ({"tools": "local"}, "settings.tools"),
        ([], "settings"),
    ],
)
def test_bad_settings_refuse_the_whole_file(
    client: httpx.Client, store: ConversationStore, settings: Any, where: str
) -> None:
    before = rows(store)
    r = client.post("/api/import", content=export_file(settings))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_import_file"
    assert error["message"].startswith(f"conversations[1].{where}: "), error["message"]
    assert rows(store) == before  # nothing stored, not even the good conversation


def test_good_settings_are_imported_and_used(client: httpx.Client, store: ConversationStore) -> None:
    settings = {"temperature": 0.2, "top_k": 5, "seed": 2**31 - 1, "stop": ["END"], "max_tokens": 7, "tools": ["x"]}
    r = client.post("/api/import", content=export_file(settings))
    assert r.status_code == 201, r.text
    conversation = client.get("/api/conversations/c1").json()
    assert conversation["settings"] == settings
    # the next reply runs with them (the seed fits the column it is stored in)
    r = client.post("/api/conversations/c1/messages", json={"content": "go on", "stream": False})
    assert r.status_code in (200, 201), r.text
    reply = next(m for m in client.get("/api/conversations/c1").json()["messages"] if m["role"] == "assistant")
    assert reply["status"] == "complete" and reply["seed"] == 2**31 - 1
