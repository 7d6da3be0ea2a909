"""Export and import of conversations, against real SQLite and a real PostgreSQL cluster.

mingyan's JSON round-trips byte for byte; Markdown shows the current path; ChatGPT's conversations.json
comes in with its branches; every malformed or hostile file is refused whole, leaving the database as
it was.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.errors import ImportFormatError, NotFound
from mingyan.store.migrate import upgrade
from mingyan.store.tables import Conversation, Message
from mingyan.store.transfer import write as transfer_write
from mingyan.store.transfer.mingyan_json import (
    export_json,
    export_markdown,
    import_chatgpt,
    import_file,
    import_json,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
POEM = "床前明月光，\n疑是地上霜。\n\n```python\nprint('月')\n```"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


# ---- helpers ------------------------------------------------------------------------------------


def counts(store: ConversationStore) -> tuple[int, int]:
    """Conversations and messages in the database, all owners together."""
    with store.engine.connect() as connection:
        conversations = connection.execute(text("SELECT count(*) FROM conversations")).scalar_one()
        messages = connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
    return conversations, messages


def delete_all(store: ConversationStore, owner: str) -> None:
    for conversation in store.list_conversations(owner, include_archived=True, limit=1000):
        store.delete_conversation(owner, conversation.id)


def populate(store: ConversationStore) -> dict[str, str]:
    """Alice's conversations: branches, two roots, Chinese, emoji, provenance, None values, settings."""
    poem = store.create_conversation(
        "alice",
        title="月亮的诗 🌙 Moon",
        model="qwen2.5-coder-0.5b-instruct",
        system_prompt="你是诗人。\nBe brief.",
        settings={"temperature": 0.7, "top_p": 0.9, "stop": ["\n\n"], "seed": 7, "max_tokens": 300},
    )
    q1 = store.add_message("alice", poem.id, "user", "写一首关于月亮的诗 🌕")
    a1 = store.start_assistant_message(
        "alice",
        poem.id,
        model_name="qwen2.5",
        model_sha256="ab" * 32,
        sampling={"temperature": 0.7, "seed": 42},
        seed=42,
        omitted_turns=2,
    )
    store.finish_message(
        "alice",
        a1.id,
        "complete",
        "stop",
        content=POEM,
        prompt_tokens=12,
        completion_tokens=30,
        cached_tokens=4,
        ttft_ms=80,
        duration_ms=1500,
    )
    a1b = store.add_message("alice", poem.id, "assistant", "Regenerated: 明月几时有", parent_id=q1.id)
    store.finish_message("alice", a1b.id, "stopped", "length", completion_tokens=7)
    q2 = store.add_message("alice", poem.id, "user", "再来一首 *markdown* <b>html</b> & \\ 'quotes' \"x\"")
    a2 = store.start_assistant_message("alice", poem.id, model_name="qwen2.5")
    store.finish_message("alice", a2.id, "error", None, content="half", error="engine failed: out of memory")
    store.add_message("alice", poem.id, "user", "edited first question", at_root=True)
    store.switch_branch("alice", poem.id, q2.id)  # current path: q1 → a1b → q2 → a2

    empty = store.create_conversation("alice", title="", settings={})
    store.set_pinned("alice", empty.id, True)
    store.set_archived("alice", empty.id, True)

    cut = store.create_conversation("alice", title="interrupted", model="smollm2")
    store.add_message("alice", cut.id, "system", "Answer in English.")
    store.add_message("alice", cut.id, "user", "tell me a story")
    half = store.start_assistant_message("alice", cut.id)
    store.save_partial("alice", half.id, "Once upon a")
    store.finish_message("alice", half.id, "interrupted")

    bobs = store.create_conversation("bob", title="bob's secret")
    store.add_message("bob", bobs.id, "user", "bob's question")
    return {"poem": poem.id, "empty": empty.id, "cut": cut.id, "bob": bobs.id, "a2": a2.id, "q1": q1.id}


def document(data: bytes) -> dict[str, Any]:
    return json.loads(data.decode("utf-8"))


def tree_shape(conversation: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """(content, parent's content, role) for every message: the tree, whatever its ids."""
    content = {m["id"]: m["content"] for m in conversation["messages"]}
    return [(m["content"], content.get(m["parent_id"]), m["role"]) for m in conversation["messages"]]


def _create_postgres_database(server_url: str) -> tuple[str, Callable[[], None]]:
    server = make_url(server_url)
    name = f"t_{uuid.uuid4().hex}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture
def other_store(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ConversationStore]:
    """A second, empty store on the *other* kind of database (SQLite ↔ PostgreSQL)."""

    def drop() -> None:
        pass

    if db_url.startswith("sqlite"):
        url, drop = _create_postgres_database(request.getfixturevalue("postgres_server"))
    else:
        (tmp_path / "other").mkdir()
        url = default_url(tmp_path / "other")
    upgrade(url)
    engine = open_database(url)
    try:
        yield ConversationStore(Database(engine))
    finally:
        engine.dispose()
        drop()


# ---- export -------------------------------------------------------------------------------------


def test_export_holds_every_column_of_every_message_parents_first(store: ConversationStore) -> None:
    ids = populate(store)
    data = export_json(store, "alice")
    doc = document(data)
    assert (doc["format"], doc["version"]) == ("mingyan-conversations", 1)
    assert data.endswith(b"}\n") and "月亮的诗 🌙".encode() in data  # UTF-8, not \u escapes
    assert [c["id"] for c in doc["conversations"]] == [ids["poem"], ids["empty"], ids["cut"]]  # oldest first
    conversation_columns = {c.name for c in Conversation.__table__.columns} - {"owner"}
    message_columns = {c.name for c in Message.__table__.columns} - {"conversation_id"}
    for conversation in doc["conversations"]:
        assert set(conversation) == conversation_columns | {"messages"}
        seen: set[str] = set()
        for message in conversation["messages"]:
            assert set(message) == message_columns
            assert message["parent_id"] is None or message["parent_id"] in seen  # parents first
            seen.add(message["id"])
            assert TIMESTAMP.fullmatch(message["created_at"]) and TIMESTAMP.fullmatch(message["updated_at"])
        assert TIMESTAMP.fullmatch(conversation["created_at"])
    poem = doc["conversations"][0]
    assert len(poem["messages"]) == 6  # every branch, not just the current path
    assert poem["current_leaf_id"] == ids["a2"]
    assert poem["settings"] == {"max_tokens": 300, "seed": 7, "stop": ["\n\n"], "temperature": 0.7, "top_p": 0.9}
    first_answer = poem["messages"][1]
    assert (first_answer["seed"], first_answer["omitted_turns"], first_answer["cached_tokens"]) == (42, 2, 4)
    assert first_answer["sampling"] == {"seed": 42, "temperature": 0.7}
    error_reply = next(m for m in poem["messages"] if m["status"] == "error")
    assert (error_reply["error"], error_reply["finish_reason"]) == ("engine failed: out of memory", None)
    assert doc["conversations"][1]["messages"] == [] and doc["conversations"][1]["pinned"] is True
    assert b"bob" not in data


def test_export_of_chosen_conversations_and_of_others_is_not_found(store: ConversationStore) -> None:
    ids = populate(store)
    doc = document(export_json(store, "alice", [ids["cut"], ids["poem"], ids["cut"]]))
    assert [c["id"] for c in doc["conversations"]] == [ids["cut"], ids["poem"]]
    assert document(export_json(store, "nobody"))["conversations"] == []
    assert document(export_json(store, "alice", []))["conversations"] == []
    with pytest.raises(NotFound) as foreign:
        export_json(store, "alice", [ids["poem"], ids["bob"]])
    with pytest.raises(NotFound) as missing:
        export_json(store, "alice", [uuid.uuid4().hex])
    assert "bob" not in str(foreign.value)
    assert type(foreign.value) is type(missing.value)
    with pytest.raises(NotFound):
        export_markdown(store, "alice", ids["bob"])


def test_export_is_the_same_in_any_session_time_zone(store: ConversationStore) -> None:
    populate(store)
    before = export_json(store, "alice")
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as connection:
            database = connection.exec_driver_sql("SELECT current_database()").scalar_one()
            connection.exec_driver_sql(f"ALTER DATABASE \"{database}\" SET timezone TO 'Asia/Shanghai'")
            connection.commit()
        store.engine.dispose()  # new connections take the new zone
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW timezone").scalar_one() == "Asia/Shanghai"
    assert export_json(store, "alice") == before


# ---- mingyan JSON round trips -------------------------------------------------------------------


def test_round_trip_is_byte_identical(store: ConversationStore) -> None:
    ids = populate(store)
    first = export_json(store, "alice")
    delete_all(store, "alice")
    result = import_json(store, "alice", first)
    assert result.conversation_ids == [ids["poem"], ids["empty"], ids["cut"]]
    assert (result.message_count, result.remapped, result.skipped) == (9, 0, {})
    second = export_json(store, "alice")
    assert second == first
    delete_all(store, "alice")
    import_json(store, "alice", second)
    assert export_json(store, "alice") == first
    # The imported tree works with the rest of the store.
    path = store.path_to("alice", ids["poem"])
    assert [m.content for m in path][-1] == "half"
    assert store.get_message("bob", store.path_to("bob", ids["bob"])[0].id).content == "bob's question"


def test_round_trip_across_databases(store: ConversationStore, other_store: ConversationStore) -> None:
    populate(store)
    original = export_json(store, "alice")
    import_json(other_store, "alice", original)
    copied = export_json(other_store, "alice")
    assert copied == original
    import_json(other_store, "carol", copied)  # the ids are taken now: a remapped copy for carol
    assert tree_shape(document(export_json(other_store, "carol"))["conversations"][0]) == tree_shape(
        document(original)["conversations"][0]
    )


def test_importing_twice_keeps_the_ids_then_remaps_them(store: ConversationStore) -> None:
    ids = populate(store)
    exported = export_json(store, "alice", [ids["poem"]])
    again = import_json(store, "alice", exported)
    assert (again.remapped, again.message_count) == (1, 6)
    (new_id,) = again.conversation_ids
    assert new_id != ids["poem"]
    original, copy_ = (
        document(exported)["conversations"][0],
        document(export_json(store, "alice", [new_id]))["conversations"][0],
    )
    assert tree_shape(copy_) == tree_shape(original)
    assert not {m["id"] for m in copy_["messages"]} & {m["id"] for m in original["messages"]}
    assert copy_["current_leaf_id"] in {m["id"] for m in copy_["messages"]}
    assert [m.content for m in store.path_to("alice", new_id)] == [
        m.content for m in store.path_to("alice", ids["poem"])
    ]
    # Everything but the ids is the same.
    for key in ("title", "settings", "created_at", "updated_at", "system_prompt", "model"):
        assert copy_[key] == original[key]
    assert export_json(store, "alice", [ids["poem"]]) == exported  # the original is untouched


def test_another_owners_ids_are_remapped_and_their_rows_left_alone(store: ConversationStore) -> None:
    ids = populate(store)
    alice_before = export_json(store, "alice")
    bob_before = export_json(store, "bob")
    result = import_json(store, "mallory", alice_before)
    assert result.remapped == 3 and not set(result.conversation_ids) & set(ids.values())
    assert export_json(store, "alice") == alice_before
    assert export_json(store, "bob") == bob_before
    assert [c.title for c in store.list_conversations("mallory", include_archived=True)] == [
        "",
        "interrupted",
        "月亮的诗 🌙 Moon",
    ]
    with pytest.raises(NotFound):
        store.get_conversation("mallory", ids["poem"])


def test_one_taken_message_id_remaps_its_whole_conversation_only(store: ConversationStore) -> None:
    ids = populate(store)
    doc = document(export_json(store, "alice", [ids["poem"], ids["cut"]]))
    for conversation in doc["conversations"]:  # fresh conversation ids everywhere ...
        conversation["id"] = uuid.uuid4().hex
    for message in doc["conversations"][1]["messages"]:  # ... and fresh message ids in the second
        old, message["id"] = message["id"], uuid.uuid4().hex
        for other in doc["conversations"][1]["messages"]:
            other["parent_id"] = message["id"] if other["parent_id"] == old else other["parent_id"]
        if doc["conversations"][1]["current_leaf_id"] == old:
            doc["conversations"][1]["current_leaf_id"] = message["id"]
    result = import_json(store, "alice", json.dumps(doc).encode())
    assert result.remapped == 1
    assert result.conversation_ids[0] != doc["conversations"][0]["id"]  # its messages' ids were taken
    assert result.conversation_ids[1] == doc["conversations"][1]["id"]  # all free: kept


def test_streaming_messages_come_in_as_interrupted_and_timestamps_normalize(store: ConversationStore) -> None:
    doc = {
        "format": "mingyan-conversations",
        "version": 1,
        "conversations": [
            {
                "id": "c1",
                "created_at": "2024-05-01T20:00:00+08:00",
                "updated_at": "2024-05-01T12:00:00",
                "current_leaf_id": "m2",
                "messages": [
                    {
                        "id": "m2",
                        "parent_id": "m1",
                        "role": "assistant",
                        "content": "半",
                        "status": "streaming",
                        "created_at": "2024-05-01T12:00:01.5Z",
                        "updated_at": "2024-05-01T12:00:01.5Z",
                    },
                    {
                        "id": "m1",
                        "role": "user",
                        "content": "hi",
                        "created_at": "2024-05-01T12:00:00Z",
                        "updated_at": "2024-05-01T12:00:00Z",
                    },
                ],
            }
        ],
    }
    result = import_json(store, "alice", json.dumps(doc).encode())
    assert (result.conversation_ids, result.message_count) == (["c1"], 2)
    assert store.get_message("alice", "m2").status == "interrupted"
    out = document(export_json(store, "alice"))["conversations"][0]
    assert out["created_at"] == out["updated_at"] == "2024-05-01T12:00:00.000000Z"
    assert [m["id"] for m in out["messages"]] == ["m1", "m2"]  # parents first
    assert out["messages"][1]["created_at"] == "2024-05-01T12:00:01.500000Z"
    assert (out["title"], out["settings"], out["system_prompt"], out["pinned"]) == ("", {}, None, False)


def test_a_write_failing_midway_leaves_nothing_behind(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = populate(store)
    doc = document(export_json(store, "alice", [ids["cut"]]))
    fresh = copy.deepcopy(doc["conversations"][0])
    fresh["id"] = "brand-new"
    for n, message in enumerate(fresh["messages"]):
        message["id"], message["parent_id"] = f"new-{n}", f"new-{n - 1}" if n else None
    fresh["current_leaf_id"] = f"new-{len(fresh['messages']) - 1}"
    doc["conversations"].insert(0, fresh)  # written first; then the taken ids collide in the database
    before = counts(store)
    monkeypatch.setattr(transfer_write, "taken_ids", lambda session, records: set())
    with pytest.raises(IntegrityError):
        import_json(store, "alice", json.dumps(doc).encode())
    assert counts(store) == before
    with pytest.raises(NotFound):
        store.get_conversation("alice", "brand-new")
    monkeypatch.undo()
    result = import_json(store, "alice", json.dumps(doc).encode())  # without the fault: both, one remapped
    assert (result.conversation_ids[0], result.remapped) == ("brand-new", 1)


# ---- Markdown -----------------------------------------------------------------------------------


def test_markdown_shows_the_current_path_verbatim_with_provenance(store: ConversationStore) -> None:
    ids = populate(store)
    md = export_markdown(store, "alice", ids["poem"])
    assert md.startswith("# 月亮的诗 🌙 Moon\n")
    assert "_2 other branches are not shown; export JSON to keep them._" in md
    assert "## System prompt\n\n你是诗人。\nBe brief.\n" in md
    sections = [s for s in re.split(r"^## ", md, flags=re.MULTILINE)][2:]
    assert [s.split("\n", 1)[0] for s in sections] == ["User", "Assistant", "User", "Assistant"]
    assert "写一首关于月亮的诗 🌕" in sections[0]
    note = "*unknown model · 7 completion tokens · finish: length · status: stopped*"
    assert f"Regenerated: 明月几时有\n\n{note}" in md
    assert "再来一首 *markdown* <b>html</b> & \\ 'quotes' \"x\"" in sections[2]  # verbatim, unescaped
    assert "*qwen2.5 · status: error (engine failed: out of memory)*" in sections[3]
    assert "床前明月光" not in md and "edited first question" not in md  # other branches


def test_markdown_of_a_reply_with_full_provenance_and_of_an_empty_conversation(store: ConversationStore) -> None:
    ids = populate(store)
    poem = document(export_json(store, "alice", [ids["poem"]]))["conversations"][0]
    first_answer = poem["messages"][1]["id"]
    store.switch_branch("alice", ids["poem"], first_answer)
    md = export_markdown(store, "alice", ids["poem"])
    assert f"{POEM}\n\n*qwen2.5 · 12 prompt + 30 completion tokens · finish: stop*\n" in md
    assert "_2 other branches are not shown" in md
    empty = export_markdown(store, "alice", ids["empty"])
    assert empty.startswith("# Untitled conversation\n") and "_No messages._" in empty
    assert "other branch" not in empty
    cut = export_markdown(store, "alice", ids["cut"])
    assert "## System\n\nAnswer in English.\n" in cut and "status: interrupted" in cut
    assert "other branch" not in cut


# ---- ChatGPT ------------------------------------------------------------------------------------


def test_chatgpt_import_keeps_branches_and_the_current_path(store: ConversationStore) -> None:
    data = (FIXTURES / "chatgpt_conversations.json").read_bytes()
    result = import_chatgpt(store, "alice", data)
    assert len(result.conversation_ids) == 2 and result.message_count == 11 and result.remapped == 0
    assert result.skipped == {
        "empty_hidden_messages": 1,
        "non_text_parts": 1,
        "tool_messages": 4,
        "unsupported_messages": 1,
    }
    moon_id, greet_id = result.conversation_ids
    moon = store.get_conversation("alice", moon_id)
    assert (moon.title, moon.model, moon.archived) == ("月亮的诗 Moon poem", "gpt-4o", False)
    path = store.path_to("alice", moon_id)
    assert [(m.role, m.content) for m in path] == [
        ("user", "写一首关于月亮的诗"),
        ("assistant", "月亮 🌙 挂在天上，\n照亮回家的路。"),
        ("user", "What is in this picture? 图里有什么？"),
        ("assistant", "A cat on a sofa. 沙发上有一只猫。"),  # re-attached past the tool call
    ]
    assert path[0].parent_id is None  # the hidden system message is gone; the user turn is a root
    assert (path[1].model_name, path[1].finish_reason) == ("gpt-4o-mini", "length")
    assert (path[3].model_name, path[3].finish_reason, path[3].status) == ("gpt-4o", "stop", "complete")
    siblings = store.siblings("alice", path[1].id)
    assert [m.content for m in siblings] == ["床前明月光，\n疑是地上霜。", path[1].content]
    assert (
        moon.created_at.year,
        document(export_json(store, "alice", [moon_id]))["conversations"][0]["created_at"],
    ) == (2024, "2024-05-01T08:00:00.123456Z")

    greet = store.get_conversation("alice", greet_id)
    assert (greet.title, greet.archived, greet.model) == ("Greetings", True, "gpt-4")
    greet_path = store.path_to("alice", greet_id)
    assert [(m.role, m.content, m.status) for m in greet_path] == [
        ("system", "You are a helpful assistant.", "complete"),
        ("user", "Hello again, 你好", "complete"),
        ("assistant", "你好！我可以", "interrupted"),  # the current node was a tool message after it
    ]
    old_branch = store.siblings("alice", greet_path[1].id)
    assert [m.content for m in old_branch] == ["Hello", "Hello again, 你好"]
    store.switch_branch("alice", greet_id, old_branch[0].id)
    assert [(m.content, m.status) for m in store.path_to("alice", greet_id)][1:] == [
        ("Hello", "complete"),
        ("Hi there! How can I help?", "complete"),
        ("Noted!", "stopped"),  # after the memory call and its result, which are skipped
    ]
    greet_doc = document(export_json(store, "alice", [greet_id]))["conversations"][0]
    untimed = next(m for m in greet_doc["messages"] if m["content"] == "Hi there! How can I help?")
    assert untimed["created_at"] == "2024-05-02T08:00:01.000000Z"  # no time: its parent's
    assert all(len(m["id"]) == 32 for m in greet_doc["messages"])  # fresh mingyan ids

    again = import_chatgpt(store, "alice", data)  # importing twice makes a second copy
    assert not set(again.conversation_ids) & set(result.conversation_ids)
    assert counts(store) == (4, 22)


def test_chatgpt_long_runs_of_skipped_nodes_collapse_onto_the_nearest_kept_one(store: ConversationStore) -> None:
    def node(role: str, text_: str, parent: str) -> dict[str, Any]:
        content = {"content_type": "text", "parts": [text_]}
        return {"message": {"author": {"role": role}, "content": content}, "parent": parent}

    mapping: dict[str, Any] = {"root": {"message": None, "parent": None}, "q": node("user", "question", "root")}
    parent = "q"
    for i in range(3000):
        mapping[f"tool-{i}"] = node("tool", "output", parent)
        parent = f"tool-{i}"
    mapping["a"] = node("assistant", "answer", parent)
    mapping["tool-after"] = node("tool", "output", "a")
    data = json.dumps([{"title": None, "mapping": mapping, "current_node": "tool-after"}]).encode()
    result = import_chatgpt(store, "alice", data)
    assert (result.message_count, result.skipped) == (2, {"tool_messages": 3001})
    (conversation_id,) = result.conversation_ids
    assert [m.content for m in store.path_to("alice", conversation_id)] == ["question", "answer"]
    assert store.get_conversation("alice", conversation_id).title == ""


def test_import_file_detects_the_format(store: ConversationStore) -> None:
    ids = populate(store)
    exported = export_json(store, "alice", [ids["cut"]])
    assert import_file(store, "bob", exported).message_count == 3
    chatgpt = (FIXTURES / "chatgpt_conversations.json").read_bytes()
    assert import_file(store, "bob", chatgpt).message_count == 11
    before = counts(store)
    for neither in (b"42", b'"text"', b"null"):
        with pytest.raises(ImportFormatError, match="neither a mingyan export"):
            import_file(store, "bob", neither)
    with pytest.raises(ImportFormatError, match='format: must be "mingyan-conversations"'):
        import_file(store, "bob", b'{"title": "a ChatGPT conversation, not in a list"}')
    with pytest.raises(ImportFormatError, match="must be a JSON list"):
        import_chatgpt(store, "bob", exported)
    assert counts(store) == before


# ---- malformed and hostile files ---------------------------------------------------------------


def _valid() -> dict[str, Any]:
    """A small, valid mingyan export: two conversations, a branch."""

    def message(id_: str, parent: str | None, role: str, content: str) -> dict[str, Any]:
        return {
            "id": id_,
            "parent_id": parent,
            "role": role,
            "content": content,
            "status": "complete",
            "created_at": "2024-05-01T12:00:00.000000Z",
            "updated_at": "2024-05-01T12:00:00.000000Z",
        }

    return {
        "format": "mingyan-conversations",
        "version": 1,
        "conversations": [
            {
                "id": "conv-a",
                "title": "A",
                "current_leaf_id": "a3",
                "created_at": "2024-05-01T12:00:00Z",
                "updated_at": "2024-05-01T12:00:00Z",
                "messages": [
                    message("a1", None, "user", "q"),
                    message("a2", "a1", "assistant", "x"),
                    message("a3", "a1", "assistant", "y"),
                ],
            },
            {
                "id": "conv-b",
                "created_at": "2024-05-01T12:00:00Z",
                "updated_at": "2024-05-01T12:00:00Z",
                "messages": [message("b1", None, "user", "hello")],
            },
        ],
    }


def _edit(change: Callable[[dict[str, Any]], Any]) -> bytes:
    doc = _valid()
    change(doc)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


CITATION = {"marker": 1, "file_id": "f1", "file_name": "a.pdf", "page": 1, "start": 0, "end": 3, "text": "abc"}


def _msg(doc: dict[str, Any], c: int = 0, m: int = 0) -> dict[str, Any]:
    return doc["conversations"][c]["messages"][m]


def _many_messages(doc: dict[str, Any]) -> None:
    template = _msg(doc)
    doc["conversations"][1]["messages"] = [{**template, "id": f"m{i}", "parent_id": None} for i in range(10_001)]


def _deep_settings(doc: dict[str, Any]) -> None:
    nested: Any = 1
    for _ in range(100):
        nested = {"x": nested}
    doc["conversations"][0]["settings"] = nested


MINGYAN_BAD: list[tuple[str, bytes, str]] = [
    ("not utf-8", b'{"format": "\xff\xfe"}', "not UTF-8"),
    ("not json", b'{"format": "mingyan-conversations",', "not valid JSON: "),
    ("empty", b"", "not valid JSON"),
    ("a list of numbers", b"[1, 2, 3]", "must be a JSON object"),
    ("nesting bomb", b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    ("deep settings", _edit(_deep_settings), "nested more than 64 levels"),
    ("NaN", _edit(lambda d: None).replace(b'"version": 1', b'"version": NaN'), "NaN is not a JSON number"),
    (
        "overflowing float",
        _edit(lambda d: d["conversations"][0].update(settings={"t": 1})).replace(b'{"t": 1}', b'{"t": 1e400}'),
        'the number "1e400" is too large',
    ),
    (
        "5000-digit integer",
        _edit(lambda d: d["conversations"][0].update(settings={"t": 1})).replace(
            b'{"t": 1}', b'{"t": ' + b"9" * 5000 + b"}"
        ),
        "an integer has more than 100 digits",
    ),
    ("duplicate key", b'{"format": "mingyan-conversations", "format": "x"}', 'repeats the key "format"'),
    (
        "other format",
        _edit(lambda d: d.update(format="chatgpt")),
        'format: must be "mingyan-conversations" (got "chatgpt")',
    ),
    ("future version", _edit(lambda d: d.update(version=2)), "version: this mingyan reads version 1 files (got 2)"),
    ("version true", _edit(lambda d: d.update(version=True)), "version: this mingyan reads version 1 files (got true)"),
    (
        "bad role",
        _edit(lambda d: _msg(d, 0, 1).update(role="robot")),
        'conversations[0].messages[1].role: must be one of system, user, assistant, tool (got "robot")',
    ),
    (
        "bad status",
        _edit(lambda d: _msg(d, 1).update(status="done")),
        "conversations[1].messages[0].status: must be one of complete, streaming, stopped, error, interrupted",
    ),
    (
        "path in an id",
        _edit(lambda d: d["conversations"][0].update(id="../etc/passwd")),
        "conversations[0].id: must be 1-32 characters of 0-9, a-z, A-Z, '_' and '-'",
    ),
    ("id too long", _edit(lambda d: _msg(d, 1).update(id="x" * 33)), "conversations[1].messages[0].id: must be 1-32"),
    (
        "duplicate message id",
        _edit(lambda d: _msg(d, 1).update(id="a2")),
        'conversations[1].messages[0].id: "a2" is already the id of conversations[0].messages[1]',
    ),
    (
        "duplicate conversation id",
        _edit(lambda d: d["conversations"][1].update(id="conv-a")),
        'conversations[1].id: "conv-a" is already the id of conversations[0]',
    ),
    (
        "parent in another conversation",
        _edit(lambda d: _msg(d, 1).update(parent_id="a1")),
        'conversations[1].messages[0].parent_id: no message "a1" in this conversation',
    ),
    ("cycle", _edit(lambda d: _msg(d, 0, 0).update(parent_id="a2")), "parents form a cycle"),
    ("own parent", _edit(lambda d: _msg(d, 1).update(parent_id="b1")), "conversations[1].messages[0].parent_id: the"),
    (
        "unknown current leaf",
        _edit(lambda d: d["conversations"][1].update(current_leaf_id="a3")),
        'conversations[1].current_leaf_id: no message "a3" in this conversation',
    ),
    (
        "title too long",
        _edit(lambda d: d["conversations"][0].update(title="题" * 201)),
        "conversations[0].title: must be at most 200 characters (has 201)",
    ),
    (
        "content too long",
        _edit(lambda d: _msg(d).update(content="x" * 1_000_001)),
        "conversations[0].messages[0].content: must be at most 1,000,000 characters (has 1,000,001)",
    ),
    ("too many messages", _edit(_many_messages), "conversations[1].messages: has too many items (at most 10,000)"),
    (
        "too many conversations",
        _edit(lambda d: d.update(conversations=[d["conversations"][1]] * 1001)),
        "conversations: has too many items (at most 1,000)",
    ),
    (
        "bad timestamp",
        _edit(lambda d: _msg(d, 0, 2).update(created_at="yesterday")),
        (
            "conversations[0].messages[2].created_at: must be an ISO 8601 timestamp like "
            '2024-05-01T12:00:00.000000Z (got "yesterday")'
        ),
    ),
    (
        "timestamp out of range",
        _edit(lambda d: _msg(d).update(updated_at="0001-01-01T00:00:00+01:00")),
        "conversations[0].messages[0].updated_at: must be between 1970-01-01 and 9999-01-01",
    ),
    (
        "unknown field",
        _edit(lambda d: _msg(d).update(owner="bob")),
        "conversations[0].messages[0].owner: is not a known field",
    ),
    (
        "string seed",
        _edit(lambda d: _msg(d).update(seed="42")),
        'conversations[0].messages[0].seed: must be an integer (got "42")',
    ),
    (
        "seed beyond int32",
        _edit(lambda d: _msg(d).update(seed=2**40)),
        "conversations[0].messages[0].seed: must be between -2,147,483,648 and 2,147,483,647",
    ),
    (
        "pinned as 1",
        _edit(lambda d: d["conversations"][0].update(pinned=1)),
        "conversations[0].pinned: must be true or false (got 1)",
    ),
    (
        "settings a list",
        _edit(lambda d: d["conversations"][0].update(settings=[1])),
        "conversations[0].settings: must be an object (got a list)",
    ),
    ("missing content", _edit(lambda d: _msg(d).pop("content")), "conversations[0].messages[0].content: is required"),
    (
        "messages not a list",
        _edit(lambda d: d["conversations"][0].update(messages="none")),
        "conversations[0].messages: must be a list",
    ),
    (
        "NUL in content",
        _edit(lambda d: _msg(d).update(content="a\x00b")),
        "conversations[0].messages[0].content: contains a NUL character",
    ),
    (
        "lone surrogate",
        _edit(lambda d: None).replace(b'"content": "q"', b'"content": "\\ud800"'),
        "conversations[0].messages[0].content: contains an unpaired UTF-16 surrogate",
    ),
    (
        "citation with an unknown key",
        _edit(lambda d: _msg(d).update(citations=[{**CITATION, "url": "http://x"}])),
        "conversations[0].messages[0].citations[0].url:",
    ),
    (
        "citation marker 0",
        _edit(lambda d: _msg(d).update(citations=[{**CITATION, "marker": 0}])),
        "conversations[0].messages[0].citations[0].marker: must be",
    ),
    (
        "huge bad role",
        _edit(lambda d: _msg(d).update(role="<script>" + "A" * 100_000)),
        'conversations[0].messages[0].role: must be one of system, user, assistant, tool (got "<script>AAAA',
    ),
]


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in MINGYAN_BAD], ids=[c[0] for c in MINGYAN_BAD])
def test_malformed_mingyan_files_are_refused_whole(store: ConversationStore, data: bytes, expected: str) -> None:
    populate(store)
    before = counts(store)
    with pytest.raises(ImportFormatError) as caught:
        import_json(store, "alice", data)
    message = str(caught.value)
    assert expected in message
    assert len(message) < 500 and "Traceback" not in message and "\n" not in message
    assert counts(store) == before
    assert caught.value.__cause__ is None  # no chained internals for a caller to print


def test_the_valid_base_of_the_malformed_cases_imports(store: ConversationStore) -> None:
    result = import_json(store, "alice", _edit(lambda d: None))
    assert (result.conversation_ids, result.message_count) == (["conv-a", "conv-b"], 4)


def test_a_citation_of_a_file_the_user_does_not_have_is_left_out(store: ConversationStore) -> None:
    result = import_json(store, "alice", _edit(lambda d: _msg(d).update(citations=[CITATION, CITATION])))
    assert (result.message_count, result.skipped) == (4, {"citations_of_missing_files": 2})
    assert b'"citations"' not in export_json(store, "alice")


def _chatgpt() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "chatgpt_conversations.json").read_bytes())


def _chatgpt_edit(change: Callable[[list[dict[str, Any]]], Any]) -> bytes:
    doc = _chatgpt()
    change(doc)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _node(doc: list[dict[str, Any]], key: str, c: int = 1) -> dict[str, Any]:
    return doc[c]["mapping"][key]


CHATGPT_BAD: list[tuple[str, bytes, str]] = [
    ("an object", b'{"mapping": {}}', "must be a JSON list of conversations"),
    ("not json", b"[{", "not valid JSON"),
    ("nesting bomb", b"[" * 100_000, "nested too deeply"),
    ("a conversation is a string", b'["hello"]', "[0]: must be an object"),
    ("no mapping", _chatgpt_edit(lambda d: d[0].pop("mapping")), "[0].mapping: is required"),
    ("mapping a list", _chatgpt_edit(lambda d: d[1].update(mapping=[])), "[1].mapping: must be an object"),
    (
        "dangling parent",
        _chatgpt_edit(lambda d: _node(d, "c2-user").update(parent="ghost")),
        '[1].mapping["c2-user"].parent: no node "ghost" in the mapping',
    ),
    ("cycle", _chatgpt_edit(lambda d: _node(d, "aaa1b2c3-root").update(parent="c2-user")), "parents form a cycle"),
    (
        "unknown role",
        _chatgpt_edit(lambda d: _node(d, "c2-user")["message"]["author"].update(role="critic")),
        '[1].mapping["c2-user"].message.author.role: must be one of system, user, assistant, tool (got "critic")',
    ),
    (
        "unknown current node",
        _chatgpt_edit(lambda d: d[1].update(current_node="nowhere")),
        '[1].current_node: no node "nowhere" in the mapping',
    ),
    (
        "time as text",
        _chatgpt_edit(lambda d: d[0].update(create_time="2024-05-01")),
        '[0].create_time: must be a number (got "2024-05-01")',
    ),
    (
        "time far future",
        _chatgpt_edit(lambda d: _node(d, "c2-user")["message"].update(create_time=1e20)),
        '[1].mapping["c2-user"].message.create_time: must be a time between 1970-01-01 and 9999-01-01',
    ),
    (
        "title too long",
        _chatgpt_edit(lambda d: d[1].update(title="t" * 201)),
        "[1].title: must be at most 200 characters",
    ),
    (
        "content too long",
        _chatgpt_edit(lambda d: _node(d, "c2-user")["message"]["content"].update(parts=["x" * 1_000_001])),
        '[1].mapping["c2-user"].message.content.parts: the text is longer than 1,000,000 characters',
    ),
    (
        "NUL in text",
        _chatgpt_edit(lambda d: _node(d, "c2-user")["message"]["content"].update(parts=["a\x00"])),
        "contains a NUL character",
    ),
    (
        "parts not a list",
        _chatgpt_edit(lambda d: _node(d, "c2-user")["message"]["content"].update(parts="hi")),
        '[1].mapping["c2-user"].message.content.parts: must be a list',
    ),
    (
        "hidden flag a string",
        _chatgpt_edit(
            lambda d: _node(d, "c2-user")["message"].update(metadata={"is_visually_hidden_from_conversation": "yes"})
        ),
        "is_visually_hidden_from_conversation: must be true or false",
    ),
]


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in CHATGPT_BAD], ids=[c[0] for c in CHATGPT_BAD])
def test_malformed_chatgpt_files_are_refused_whole(store: ConversationStore, data: bytes, expected: str) -> None:
    populate(store)
    before = counts(store)
    with pytest.raises(ImportFormatError) as caught:
        import_chatgpt(store, "alice", data)
    message = str(caught.value)
    assert expected in message
    assert len(message) < 500 and "Traceback" not in message
    assert counts(store) == before
