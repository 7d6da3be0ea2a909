"""The conversation store, against real SQLite and a real PostgreSQL cluster."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import StatementError

from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.errors import NotFound
from mingyan.store.migrate import upgrade
from mingyan.store.tables import Base, Conversation, Message


def texts(messages) -> list[str]:
    return [m.content for m in messages]


# ---- schema -----------------------------------------------------------------------------------


def test_migrations_create_the_schema_and_rerunning_is_a_noop(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = open_database(db_url)
    try:
        inspector = inspect(engine)
        assert {"conversations", "messages", "alembic_version"} <= set(inspector.get_table_names())
        message_indexes = {i["name"] for i in inspector.get_indexes("messages")}
        assert {"ix_messages_conversation_id", "ix_messages_parent_id"} <= message_indexes
        conversation_indexes = {i["name"] for i in inspector.get_indexes("conversations")}
        assert "ix_conversations_owner_updated_at" in conversation_indexes
        fks = {fk["referred_table"] for fk in inspector.get_foreign_keys("conversations")}
        assert fks == {"messages"}
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0006"]
    finally:
        engine.dispose()


def test_sqlite_pragmas_are_in_effect(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    assert url == f"sqlite:///{tmp_path / 'mingyan.db'}"
    engine = open_database(url)
    try:
        with engine.connect() as connection:

            def pragma(name: str):
                return connection.exec_driver_sql(f"PRAGMA {name}").scalar()

            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 2  # FULL
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == 5000
    finally:
        engine.dispose()


def test_sqlite_write_transactions_take_the_lock_up_front(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    upgrade(url)
    engine = open_database(url)
    other = sqlite3.connect(tmp_path / "mingyan.db", timeout=0.1, isolation_level=None)
    try:
        with engine.begin():
            # BEGIN IMMEDIATE holds the write lock from the start: another writer cannot begin,
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            # while readers still read (WAL).
            assert other.execute("SELECT count(*) FROM conversations").fetchone() == (0,)
    finally:
        other.close()
        engine.dispose()


def test_sqlite_reads_never_hold_the_write_lock(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    upgrade(url)
    store = ConversationStore(Database.open(url))
    other = sqlite3.connect(tmp_path / "mingyan.db", timeout=0.1, isolation_level=None)
    try:
        with store.reads() as session:
            assert session.execute(text("SELECT count(*) FROM conversations")).scalar() == 0
            other.execute("BEGIN IMMEDIATE")  # a writer gets in while the read transaction is open
            other.execute(
                "INSERT INTO conversations (id, owner, title, model, settings, pinned, archived, "
                "created_at, updated_at) VALUES ('c', 'o', '', '', '{}', 0, 0, '2026-01-01', '2026-01-01')"
            )
            other.execute("COMMIT")
            assert session.execute(text("SELECT count(*) FROM conversations")).scalar() == 0  # its snapshot
        assert len(store.list_conversations("o")) == 1
    finally:
        other.close()
        store.engine.dispose()


# ---- conversations ----------------------------------------------------------------------------


def test_conversations_list_pinned_first_then_newest(store: ConversationStore) -> None:
    a = store.create_conversation("alice", title="a", model="qwen", settings={"temperature": 0.2})
    b = store.create_conversation("alice", title="b")
    c = store.create_conversation("alice", title="c")
    store.create_conversation("bob", title="bob's")
    store.set_pinned("alice", a.id, True)
    store.rename("alice", b.id, "b renamed")  # touches b: now newer than c
    assert [x.title for x in store.list_conversations("alice")] == ["a", "b renamed", "c"]
    assert [x.title for x in store.list_conversations("alice", limit=1, offset=1)] == ["b renamed"]
    store.set_archived("alice", c.id, True)
    assert [x.title for x in store.list_conversations("alice")] == ["a", "b renamed"]
    assert len(store.list_conversations("alice", include_archived=True)) == 3
    got = store.get_conversation("alice", a.id)
    assert (got.model, got.settings, got.pinned, got.system_prompt) == ("qwen", {"temperature": 0.2}, True, None)


def test_another_owner_gets_not_found_everywhere(store: ConversationStore) -> None:
    conv = store.create_conversation("alice", title="secret")
    msg = store.add_message("alice", conv.id, "user", "hi")
    streaming = store.start_assistant_message("alice", conv.id)
    calls = [
        lambda: store.get_conversation("mallory", conv.id),
        lambda: store.rename("mallory", conv.id, "x"),
        lambda: store.set_pinned("mallory", conv.id, True),
        lambda: store.set_archived("mallory", conv.id, True),
        lambda: store.delete_conversation("mallory", conv.id),
        lambda: store.add_message("mallory", conv.id, "user", "x"),
        lambda: store.start_assistant_message("mallory", conv.id),
        lambda: store.save_partial("mallory", streaming.id, "x"),
        lambda: store.finish_message("mallory", streaming.id, "complete"),
        lambda: store.get_message("mallory", msg.id),
        lambda: store.path_to("mallory", conv.id),
        lambda: store.path_to("mallory", conv.id, msg.id),
        lambda: store.siblings("mallory", msg.id),
        lambda: store.switch_branch("mallory", conv.id, msg.id),
    ]
    missing = uuid.uuid4().hex
    for call in calls:
        with pytest.raises(NotFound) as caught:
            call()
        # Same error as for an id that does not exist at all.
        assert "mallory" not in str(caught.value) and "alice" not in str(caught.value)
    with pytest.raises(NotFound):
        store.get_conversation("alice", missing)
    assert store.list_conversations("mallory") == []
    after = store.get_conversation("alice", conv.id)
    assert (after.title, after.pinned, after.archived) == ("secret", False, False)
    assert texts(store.path_to("alice", conv.id)) == ["hi", ""]


def test_a_parent_from_another_conversation_is_refused(store: ConversationStore) -> None:
    one = store.create_conversation("alice")
    two = store.create_conversation("alice")
    foreign = store.add_message("alice", two.id, "user", "elsewhere")
    store.add_message("alice", one.id, "user", "hi")
    with pytest.raises(NotFound):
        store.add_message("alice", one.id, "assistant", "x", parent_id=foreign.id)
    assert texts(store.path_to("alice", one.id)) == ["hi"]


def test_delete_cascades_to_messages(store: ConversationStore) -> None:
    conv = store.create_conversation("alice")
    kept = store.create_conversation("alice")
    store.add_message("alice", conv.id, "system", "be brief")
    user = store.add_message("alice", conv.id, "user", "hi")
    store.add_message("alice", conv.id, "assistant", "hello")
    store.add_message("alice", conv.id, "user", "edited", parent_id=user.parent_id)
    store.add_message("alice", kept.id, "user", "stays")
    store.delete_conversation("alice", conv.id)
    with pytest.raises(NotFound):
        store.get_conversation("alice", conv.id)
    with pytest.raises(NotFound):
        store.get_message("alice", user.id)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT content FROM messages")).scalars().all() == ["stays"]


# ---- the message tree -------------------------------------------------------------------------


def test_edit_and_regenerate_make_siblings_and_branches_switch(store: ConversationStore) -> None:
    conv = store.create_conversation("alice", system_prompt="be kind")
    q1 = store.add_message("alice", conv.id, "user", "q1")
    a1 = store.add_message("alice", conv.id, "assistant", "a1")
    q2 = store.add_message("alice", conv.id, "user", "q2")
    a2 = store.add_message("alice", conv.id, "assistant", "a2")
    assert texts(store.path_to("alice", conv.id)) == ["q1", "a1", "q2", "a2"]

    # Regenerate a2: a sibling under q2, which becomes the current leaf.
    a2b = store.add_message("alice", conv.id, "assistant", "a2b", parent_id=q2.id)
    assert texts(store.path_to("alice", conv.id)) == ["q1", "a1", "q2", "a2b"]
    assert [m.id for m in store.siblings("alice", a2.id)] == [a2.id, a2b.id]

    # Edit q2: a sibling under a1, then its answer.
    q2b = store.add_message("alice", conv.id, "user", "q2 edited", parent_id=a1.id)
    store.add_message("alice", conv.id, "assistant", "a2 for edit")
    assert texts(store.path_to("alice", conv.id)) == ["q1", "a1", "q2 edited", "a2 for edit"]
    assert [m.id for m in store.siblings("alice", q2.id)] == [q2.id, q2b.id]

    # Edit the first message: a second root.
    q1b = store.add_message("alice", conv.id, "user", "q1 edited", at_root=True)
    assert texts(store.path_to("alice", conv.id)) == ["q1 edited"]
    assert [m.id for m in store.siblings("alice", q1.id)] == [q1.id, q1b.id]

    # path_to an explicit leaf follows its parents, whatever is current.
    assert texts(store.path_to("alice", conv.id, a2.id)) == ["q1", "a1", "q2", "a2"]

    # Switch back to the first root: the deepest, latest descendant becomes the leaf.
    leaf = store.switch_branch("alice", conv.id, q1.id)
    assert leaf.content == "a2 for edit"
    assert store.get_conversation("alice", conv.id).current_leaf_id == leaf.id
    assert texts(store.path_to("alice", conv.id)) == ["q1", "a1", "q2 edited", "a2 for edit"]
    assert store.switch_branch("alice", conv.id, q2.id).id == a2b.id
    assert texts(store.path_to("alice", conv.id)) == ["q1", "a1", "q2", "a2b"]
    # The next turn continues the current branch.
    store.add_message("alice", conv.id, "user", "q3")
    assert texts(store.path_to("alice", conv.id)) == ["q1", "a1", "q2", "a2b", "q3"]


def test_streaming_partial_and_finish(store: ConversationStore) -> None:
    conv = store.create_conversation("alice")
    store.add_message("alice", conv.id, "user", "写一首诗")
    msg = store.start_assistant_message(
        "alice",
        conv.id,
        model_name="qwen2.5",
        model_sha256="ab" * 32,
        sampling={"temperature": 0.7, "top_p": 0.9},
        seed=42,
    )
    assert (msg.status, msg.content, msg.role) == ("streaming", "", "assistant")
    store.save_partial("alice", msg.id, "床前")
    store.save_partial("alice", msg.id, "床前明月光")
    assert store.get_message("alice", msg.id).content == "床前明月光"
    store.finish_message(
        "alice",
        msg.id,
        "complete",
        "stop",
        prompt_tokens=12,
        completion_tokens=5,
        cached_tokens=3,
        ttft_ms=80,
        duration_ms=400,
    )
    done = store.get_message("alice", msg.id)
    assert (done.status, done.finish_reason, done.content) == ("complete", "stop", "床前明月光")
    assert (done.model_name, done.seed, done.sampling) == ("qwen2.5", 42, {"temperature": 0.7, "top_p": 0.9})
    assert (done.prompt_tokens, done.completion_tokens, done.cached_tokens) == (12, 5, 3)
    assert (done.ttft_ms, done.duration_ms) == (80, 400)
    with pytest.raises(ValueError):
        store.finish_message("alice", msg.id, "streaming")


def test_mark_interrupted_streams(store: ConversationStore) -> None:
    conv = store.create_conversation("alice")
    store.add_message("alice", conv.id, "user", "hi")
    cut = store.start_assistant_message("alice", conv.id)
    store.save_partial("alice", cut.id, "half an ans")
    other = store.create_conversation("bob")
    store.add_message("bob", other.id, "user", "hey")
    cut2 = store.start_assistant_message("bob", other.id)
    done = store.start_assistant_message("bob", other.id)
    store.finish_message("bob", done.id, "complete", "stop", content="full")
    assert store.mark_interrupted_streams() == 2
    assert store.mark_interrupted_streams() == 0
    got = store.get_message("alice", cut.id)
    assert (got.status, got.content) == ("interrupted", "half an ans")
    assert store.get_message("bob", cut2.id).status == "interrupted"
    assert store.get_message("bob", done.id).status == "complete"


def test_a_failed_transaction_leaves_nothing_half_written(store: ConversationStore) -> None:
    conv = store.create_conversation("alice", title="before")
    store.add_message("alice", conv.id, "user", "hi")
    with pytest.raises(RuntimeError), store.sessions.begin() as session:
        session.add(Conversation(owner="alice", title="half", settings={}, pinned=False, archived=False))
        session.get(Conversation, conv.id).title = "changed"
        session.flush()  # written to the database, not yet committed
        raise RuntimeError("crash mid-transaction")
    assert [c.title for c in store.list_conversations("alice")] == ["before"]
    # A constraint failure inside a repository call rolls back the whole call.
    with pytest.raises((StatementError, TypeError)):  # SQLAlchemy or the driver serializes JSON
        store.add_message("alice", conv.id, "assistant", "x", sampling={"bad": object()})  # not JSON
    assert texts(store.path_to("alice", conv.id)) == ["hi"]
    assert store.get_conversation("alice", conv.id).current_leaf_id is not None


def _modelled(name: str | None, type_: str, _parent_names: dict) -> bool:
    """Search's dialect-specific objects (migration 0003) are not in tables.py, on purpose: SQLite's
    FTS5 index and its document table (and FTS5's shadow tables, all named search_*), PostgreSQL's
    pg_trgm GIN indexes (named *_trgm). Everything else must match."""
    if type_ == "table" and name is not None and name.startswith("search_"):
        return False
    return not (type_ == "index" and name is not None and name.endswith("_trgm"))


def test_the_migrations_match_the_tables(db_url: str) -> None:
    upgrade(db_url)
    engine = open_database(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": _modelled})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_deleting_a_very_long_conversation(store: ConversationStore) -> None:
    """A 1,500-message chain: no cascade recursion (SQLite stops at 1,000 levels)."""
    conversation = store.create_conversation("alice")
    with store.sessions.begin() as session:
        parent = None
        for i in range(1500):
            message = Message(conversation_id=conversation.id, parent_id=parent, role="user", content=str(i))
            session.add(message)
            session.flush()
            parent = message.id
    store.delete_conversation("alice", conversation.id)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 0
