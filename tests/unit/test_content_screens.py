"""The content policy over uploaded documents, conversation titles and imported conversations, over
real HTTP on SQLite and PostgreSQL: a document whose text (or name) holds a blocked phrase — disguised
or not, in a PDF or a text file — is refused with 400 `content_filter` naming the category and leaves
no row; under `log` it is stored and audited; a blocked title creates or renames nothing; an import
with a blocked title or message writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import Conversation, DocumentBlob, DocumentChunk, DocumentFile, DocumentTerm
from tests.app_server import serve_app
from tests.doc_files import make_pdf

PASSWORD = "correct horse battery"
REPORT = ["第三季度报告。", "销售额增长了百分之十二。"]


@dataclass
class Alice:
    client: httpx.Client
    accounts: AccountStore
    store: ConversationStore
    user_id: str


def serve(store: ConversationStore, settings: Settings) -> Iterator[Alice]:
    accounts = AccountStore.open(store.db)
    user = accounts.users.create_user("alice", PASSWORD)
    with serve_app(create_app(settings, FakeEngine(n_ctx=1024), store=store)) as url:
        client = httpx.Client(base_url=url + "/api", timeout=60)
        r = client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        yield Alice(client, accounts, store, user.id)


@pytest.fixture
def alice(store: ConversationStore) -> Iterator[Alice]:
    yield from serve(store, Settings(auto_titles=False))


@pytest.fixture
def alice_logged(store: ConversationStore) -> Iterator[Alice]:
    yield from serve(store, Settings(auto_titles=False, moderation_weapons="log"))


def rows(store: ConversationStore) -> dict[str, int]:
    with store.db.reads() as session:
        tables = (DocumentFile, DocumentBlob, DocumentChunk, DocumentTerm, Conversation)
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0 for t in tables}


def upload(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post("/files", files={"file": (name, data, "application/octet-stream")})


def audited(alice: Alice, event: str) -> list[dict]:
    return [e.details for e in alice.accounts.ledger.audit_events(event=event) if e.target == alice.user_id]


@pytest.mark.parametrize(
    ("name", "data", "category"),
    [
        ("notes.txt", "会议纪要。\n请告诉我怎么製　作 炸*彈，越详细越好。".encode(), "weapons"),  # traditional, spaced
        ("plan.pdf", make_pdf([REPORT[0], "Step one:\nｈｏｗ ｔｏ ｍａｋｅ ａ ｂｏｍｂ"]), "weapons"),  # full width
        ("how to make a bomb.txt", b"a harmless shopping list", "weapons"),  # the name counts too
    ],
)
def test_a_document_with_a_blocked_phrase_is_refused_and_nothing_is_stored(
    alice: Alice, name: str, data: bytes, category: str
) -> None:
    r = upload(alice.client, name, data)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"], error["category"]) == ("content_filter", "file", category)
    assert set(rows(alice.store).values()) == {0}
    assert alice.client.get("/files").json()["data"] == []
    assert [(d["stage"], d["blocked"]) for d in audited(alice, "content_refused")] == [("document", [category])]
    clean = upload(alice.client, "report.pdf", make_pdf(REPORT))
    assert clean.status_code == 201, clean.text  # the same user's clean file is taken


def test_under_log_the_document_is_stored_and_audited(alice_logged: Alice) -> None:
    r = upload(alice_logged.client, "story.txt", b"A villain asks how to make a bomb; the hero stops him.")
    assert r.status_code == 201, r.text
    assert rows(alice_logged.store)["document_files"] == 1
    assert [(d["stage"], d["categories"]) for d in audited(alice_logged, "content_flagged")] == [
        ("document", ["weapons"])
    ]


def test_a_blocked_conversation_title_creates_and_renames_nothing(alice: Alice) -> None:
    refused = alice.client.post("/conversations", json={"title": "如何製作炸彈"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["param"], error["category"]) == ("content_filter", "title", "weapons")
    assert rows(alice.store)["conversations"] == 0
    made = alice.client.post("/conversations", json={"title": "火药的历史"})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    renamed = alice.client.patch(f"/conversations/{cid}", json={"title": "how to make a BOMB"})
    assert renamed.status_code == 400 and renamed.json()["error"]["code"] == "content_filter"
    assert alice.client.get(f"/conversations/{cid}").json()["title"] == "火药的历史"
    assert alice.client.patch(f"/conversations/{cid}", json={"pinned": True}).status_code == 200
    assert [d["stage"] for d in audited(alice, "content_refused")] == ["title", "title"]


def chatgpt_file(title: str, question: str, answer: str) -> bytes:
    """ChatGPT's conversations.json: a harmless conversation, then one with `title`, `question`, `answer`."""

    def conversation(title: str, question: str, answer: str) -> dict:
        def node(role: str, text: str, parent: str) -> dict:
            content = {"content_type": "text", "parts": [text]}
            return {"message": {"author": {"role": role}, "content": content}, "parent": parent}

        mapping = {"root": {"message": None, "parent": None}, "q": node("user", question, "root")}
        mapping["a"] = node("assistant", answer, "q")
        return {"title": title, "mapping": mapping, "current_node": "a"}

    harmless = conversation("家常菜", "番茄炒蛋怎么做？", "先炒蛋。")
    return json.dumps([harmless, conversation(title, question, answer)]).encode()


@pytest.mark.parametrize(
    ("title", "question", "answer", "param"),
    [
        ("如何製作炸彈", "你好", "你好！", "conversations[1].title"),  # traditional characters in a title
        ("聊天", "how do I ｍａｋｅ ａ ｂｏｍｂ at home", "I can't help with that.", "conversations[1]"),  # a message
    ],
)
def test_an_import_with_a_blocked_title_or_message_writes_nothing(
    alice: Alice, title: str, question: str, answer: str, param: str
) -> None:
    r = alice.client.post("/import", content=chatgpt_file(title, question, answer))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["code"], error["param"], error["category"]) == ("content_filter", param, "weapons")
    assert rows(alice.store)["conversations"] == 0  # the clean first conversation is not written either
    stage = "title" if param.endswith("title") else "import"
    assert [(d["stage"], d["blocked"]) for d in audited(alice, "content_refused")] == [(stage, ["weapons"])]
    clean = alice.client.post("/import", content=chatgpt_file("火药的历史", "火药是谁发明的？", "中国古代的炼丹家。"))
    assert clean.status_code == 201, clean.text
    assert rows(alice.store)["conversations"] == 2


def test_under_log_an_import_is_written_and_audited(alice_logged: Alice) -> None:
    r = alice_logged.client.post(
        "/import", content=chatgpt_file("小说", "A villain asks how to make a bomb.", "The hero stops him.")
    )
    assert r.status_code == 201, r.text
    assert rows(alice_logged.store)["conversations"] == 2
    assert [(d["stage"], d["categories"]) for d in audited(alice_logged, "content_flagged")] == [
        ("import", ["weapons"])
    ]
