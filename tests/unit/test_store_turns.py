"""A turn (the user's message and the assistant's empty reply) is stored in one transaction: when the
database refuses the reply's row (a full disk: PostgreSQL's `53100 disk_full`), the user's message is
not left behind without it, and the client gets a clear 503.

The refusal is a real database error raised by a trigger on `messages`, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.conversations import ConversationStore
from mingyan.store.errors import is_disk_full
from tests.app_server import serve_app

SQLITE_REFUSAL = """
CREATE TRIGGER refuse_replies BEFORE INSERT ON messages WHEN NEW.role = 'assistant'
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END
"""
POSTGRES_REFUSAL = (
    """
CREATE FUNCTION refuse_replies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file "base/1/2": No space left on device' USING ERRCODE = 'disk_full';
END $$
""",
    """
CREATE TRIGGER refuse_replies BEFORE INSERT ON messages
FOR EACH ROW WHEN (NEW.role = 'assistant') EXECUTE FUNCTION refuse_replies()
""",
)


def refuse_replies(store: ConversationStore) -> None:
    """From now on, inserting an assistant message fails inside the database."""
    statements = (SQLITE_REFUSAL,) if store.db.dialect == "sqlite" else POSTGRES_REFUSAL
    with store.engine.begin() as c:
        for statement in statements:
            c.exec_driver_sql(statement)


def test_a_turn_whose_reply_cannot_be_stored_leaves_nothing(store: ConversationStore) -> None:
    conversation = store.create_conversation("alice")
    user, reply = store.start_turn("alice", conversation.id, "Hello?", at_root=True)
    assert user is not None and reply.parent_id == user.id and reply.status == "streaming"
    refuse_replies(store)
    with pytest.raises(DBAPIError):
        store.start_turn("alice", conversation.id, "And again?", reply.id)
    tree = store.tree("alice", conversation.id)
    assert [m.id for m in tree.messages] == [user.id, reply.id]  # no user message without its reply
    assert tree.conversation.current_leaf_id == reply.id


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_refused_turn_is_a_clear_503_and_stores_nothing(store: ConversationStore) -> None:
    app = create_app(Settings(auto_titles=False), FakeEngine(n_ctx=2048), store=store)
    with serve_app(app) as url:
        api = httpx.Client(base_url=url + "/api", timeout=60)
        cid = api.post("/conversations", json={}).json()["id"]
        refuse_replies(store)
        r = api.post(f"/conversations/{cid}/messages", json={"content": "Hello?", "stream": False})
        assert r.status_code == 503 and r.headers.get("retry-after"), r.text
        error = r.json()["error"]
        assert error["code"] == "database_unavailable" and "disk is full" in error["message"], error
        assert api.get(f"/conversations/{cid}").json()["messages"] == []


def test_a_connection_refused_for_want_of_room_reads_as_a_full_disk() -> None:
    """Found by tests/integration/test_postgres_disk_full.py: on a full disk PostgreSQL refuses a new
    connection with this FATAL (the new backend cannot write its relation-cache init file)."""
    refused = (
        '(psycopg.OperationalError) connection failed: connection to server at "127.0.0.1", port 44115 '
        "failed: FATAL:  could not write init file"
    )
    assert is_disk_full(Exception(refused))
    assert not is_disk_full(Exception("connection failed: Connection refused"))  # a server that is down
