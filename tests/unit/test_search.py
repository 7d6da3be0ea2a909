"""Search across one owner's conversations, on real SQLite (FTS5 trigram) and real PostgreSQL (pg_trgm)."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import inspect, text

from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, open_database
from mingyan.store.migrate import alembic_config, upgrade
from mingyan.store.search import MAX_QUERY_CHARS, SearchHit, make_snippet, search


def found(store: ConversationStore, owner: str, query: str, **page) -> list[str | None]:
    """The matching text of each hit: a message's content, or the title for a title hit."""
    hits = search(store, owner, query, **page)
    return [_text(store, owner, hit) for hit in hits]


def _text(store: ConversationStore, owner: str, hit: SearchHit) -> str:
    if hit.message_id is None:
        return hit.conversation_title
    return store.get_message(owner, hit.message_id).content


def assert_highlights(hit: SearchHit, terms: list[str]) -> None:
    assert hit.match, f"no highlight in {hit.snippet!r}"
    for start, end in hit.match:
        assert hit.snippet[start:end].lower() in {t.lower() for t in terms}


def chat(store: ConversationStore, owner: str, *texts: str, title: str = "") -> str:
    """A conversation of alternating user/assistant messages; returns its id."""
    conversation = store.create_conversation(owner, title=title)
    for i, content in enumerate(texts):
        store.add_message(owner, conversation.id, "user" if i % 2 == 0 else "assistant", content)
    return conversation.id


def chat_sql(engine, owner: str, text_: str, title: str = "") -> None:
    """One conversation with one user message, in plain SQL: the ORM's tables are those of the newest
    schema, and this writes into an older one."""
    cid, mid = uuid.uuid4().hex, uuid.uuid4().hex
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversations "
                "(id, owner, title, model, settings, pinned, archived, created_at, updated_at) "
                "VALUES (:id, :owner, :title, '', '{}', false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": cid, "owner": owner, "title": title},
        )
        connection.execute(
            text(
                "INSERT INTO messages (id, conversation_id, role, content, status, created_at, updated_at) "
                "VALUES (:id, :cid, 'user', :content, 'complete', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": mid, "cid": cid, "content": text_},
        )


# ---- languages ---------------------------------------------------------------------------------


def test_chinese_queries_of_any_length(store: ConversationStore) -> None:
    chat(store, "alice", "我想去北京看长城", "长城在北京的北边，八达岭最有名。")
    chat(store, "alice", "长城在哪里？", "在中国北方。")
    chat(store, "alice", "我家的猫很可爱", "猫喜欢睡觉")
    assert found(store, "alice", "北京") == ["长城在北京的北边，八达岭最有名。", "我想去北京看长城"]
    assert found(store, "alice", "长城在哪里") == ["长城在哪里？"]
    assert found(store, "alice", "猫") == ["猫喜欢睡觉", "我家的猫很可爱"]  # one character
    assert found(store, "alice", "八达岭") == ["长城在北京的北边，八达岭最有名。"]
    assert found(store, "alice", "上海") == []
    for hit in search(store, "alice", "北京"):
        assert_highlights(hit, ["北京"])


def test_mixed_chinese_and_english(store: ConversationStore) -> None:
    chat(store, "alice", "有没有好的Python入门教程？", "推荐官方的 python 教程。")
    chat(store, "alice", "Python 装饰器怎么写", "用 @functools.wraps。")
    chat(store, "alice", "Rust 教程", "看 The Book。")
    expected = ["推荐官方的 python 教程。", "有没有好的Python入门教程？"]
    assert found(store, "alice", "Python 教程") == expected
    assert found(store, "alice", "python入门") == ["有没有好的Python入门教程？"]
    hit = search(store, "alice", "Python 教程")[0]
    assert_highlights(hit, ["Python", "教程"])
    assert {hit.snippet[s:e] for s, e in hit.match} == {"python", "教程"}


def test_english_is_case_insensitive(store: ConversationStore) -> None:
    chat(store, "alice", "How do I bake Sourdough BREAD?", "Start with a healthy starter.")
    assert found(store, "alice", "sourdough bread") == ["How do I bake Sourdough BREAD?"]
    assert found(store, "alice", "SOURDOUGH") == ["How do I bake Sourdough BREAD?"]
    assert found(store, "alice", "hEaLtHy") == ["Start with a healthy starter."]
    # One or two letters: too short for trigrams, still found in any case.
    assert found(store, "alice", "i") == ["Start with a healthy starter.", "How do I bake Sourdough BREAD?"]
    assert found(store, "alice", "do") == ["How do I bake Sourdough BREAD?"]
    assert found(store, "alice", "DO") == ["How do I bake Sourdough BREAD?"]


def test_every_term_must_occur_in_the_same_message(store: ConversationStore) -> None:
    chat(store, "alice", "apple and banana", "only apple here", "banana split", "cherry")
    assert found(store, "alice", "apple banana") == ["apple and banana"]
    assert found(store, "alice", "banana   apple") == ["apple and banana"]
    assert found(store, "alice", "apple cherry") == []
    assert found(store, "alice", "an apple") == ["apple and banana"]  # short and long terms together
    assert found(store, "alice", "apple apple") == ["only apple here", "apple and banana"]


# ---- what is searched --------------------------------------------------------------------------


def test_a_title_matches_too(store: ConversationStore) -> None:
    conversation_id = chat(store, "alice", "hello", "hi there", title="旅行计划 Travel plans")
    hits = search(store, "alice", "travel")
    assert len(hits) == 1
    (hit,) = hits
    assert (hit.conversation_id, hit.message_id, hit.role) == (conversation_id, None, None)
    assert hit.conversation_title == hit.snippet == "旅行计划 Travel plans"
    assert hit.match == [(5, 11)]
    assert found(store, "alice", "旅行") == ["旅行计划 Travel plans"]
    store.rename("alice", conversation_id, "Weekend in Hangzhou")
    assert found(store, "alice", "travel") == []
    assert found(store, "alice", "hangzhou") == ["Weekend in Hangzhou"]


def test_title_and_message_hits_are_separate(store: ConversationStore) -> None:
    conversation_id = chat(store, "alice", "tell me about pandas", "Pandas eat bamboo.", title="Pandas")
    hits = search(store, "alice", "pandas")
    assert {(h.conversation_id, h.message_id is None) for h in hits} == {
        (conversation_id, True),
        (conversation_id, False),
    }
    assert len(hits) == 3
    assert all(h.conversation_title == "Pandas" for h in hits)
    # Each term must be in one document: the title plus a message do not make a hit together.
    assert found(store, "alice", "pandas bamboo") == ["Pandas eat bamboo."]
    assert found(store, "alice", "tell bamboo") == []


def test_only_user_and_assistant_text_is_searched(store: ConversationStore) -> None:
    conversation = store.create_conversation("alice", system_prompt="secret instructions")
    store.add_message("alice", conversation.id, "system", "secret instructions")
    store.add_message("alice", conversation.id, "user", "public question")
    store.start_assistant_message("alice", conversation.id)  # empty, streaming
    assert found(store, "alice", "secret") == []
    assert found(store, "alice", "question") == ["public question"]
    roles = [h.role for h in search(store, "alice", "public")]
    assert roles == ["user"]


def test_another_owners_text_never_appears(store: ConversationStore) -> None:
    mine = chat(store, "alice", "my 北京 trip notes", title="alice trip")
    chat(store, "bob", "bob's 北京 trip notes", "猫 trip", title="bob trip")
    chat(store, "bobby", "bobby's trip")
    for query in ("trip", "北京", "猫", "bob", "notes", "TRIP NOTES"):
        hits = search(store, "alice", query)
        assert all(h.conversation_id == mine for h in hits), query
        for hit in hits:
            assert "bob" not in hit.snippet and "bob" not in hit.conversation_title
    assert found(store, "alice", "trip") == ["alice trip", "my 北京 trip notes"]
    assert found(store, "mallory", "trip") == []
    assert len(search(store, "bob", "trip")) == 3  # the title and two messages


def test_archived_conversations_are_included_and_flagged(store: ConversationStore) -> None:
    kept = chat(store, "alice", "zebra crossing")
    archived = chat(store, "alice", "zebra stripes")
    store.set_archived("alice", archived, True)
    hits = {h.conversation_id: h.archived for h in search(store, "alice", "zebra")}
    assert hits == {kept: False, archived: True}


# ---- keeping up with changes -------------------------------------------------------------------


def test_streamed_text_is_found_as_it_changes(store: ConversationStore) -> None:
    conversation_id = chat(store, "alice", "写一首诗")
    reply = store.start_assistant_message("alice", conversation_id)
    store.save_partial("alice", reply.id, "旧的草稿 draft about rivers")
    assert found(store, "alice", "rivers") == ["旧的草稿 draft about rivers"]
    store.save_partial("alice", reply.id, "新的诗 poem about mountains")
    assert found(store, "alice", "rivers") == []
    assert found(store, "alice", "旧的") == []
    assert found(store, "alice", "mountains") == ["新的诗 poem about mountains"]
    assert found(store, "alice", "新的") == ["新的诗 poem about mountains"]
    store.finish_message("alice", reply.id, "complete", "stop", content="床前明月光 final")
    assert found(store, "alice", "mountains") == []
    assert [h.message_id for h in search(store, "alice", "明月")] == [reply.id]
    # A partial save that reaches the database after the final one (its worker thread outlived the
    # cancelled saver: seen in the 30-minute soak) changes nothing.
    store.save_partial("alice", reply.id, "新的诗 poem about mountains", tokens=3)
    finished = store.path_to("alice", conversation_id)[-1]
    assert (finished.content, finished.status) == ("床前明月光 final", "complete")
    assert found(store, "alice", "mountains") == []


def test_a_deleted_conversation_is_gone(store: ConversationStore) -> None:
    gone = chat(store, "alice", "ephemeral 秘密 words", "more ephemeral", title="ephemeral title")
    kept = chat(store, "alice", "ephemeral but kept")
    store.delete_conversation("alice", gone)
    assert [h.conversation_id for h in search(store, "alice", "ephemeral")] == [kept]
    assert found(store, "alice", "秘密") == []


def vacuum(store: ConversationStore) -> None:
    """VACUUM (SQLite) or VACUUM FULL (PostgreSQL): both rewrite the tables, outside any transaction."""
    if store.engine.dialect.name == "sqlite":
        raw = store.engine.raw_connection()  # in autocommit mode (see db.py); the engine would BEGIN
        try:
            raw.cursor().execute("VACUUM")
        finally:
            raw.close()
        return
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM FULL")


def test_the_index_survives_vacuum_and_edits(store: ConversationStore) -> None:
    """messages has a TEXT primary key, so SQLite may renumber its implicit rowid on VACUUM; the index is
    keyed by search_documents' own INTEGER PRIMARY KEY and must stay consistent through a rewrite."""
    early = chat(store, "alice", "alpha one", "alpha two")
    late = chat(store, "alice", "beta one")
    reply = store.start_assistant_message("alice", late)
    store.save_partial("alice", reply.id, "beta two")
    store.delete_conversation("alice", early)
    vacuum(store)
    store.save_partial("alice", reply.id, "gamma two")  # the reply, still streaming, changes its text
    assert found(store, "alice", "beta") == ["beta one"]
    assert found(store, "alice", "gamma") == ["gamma two"]
    assert found(store, "alice", "alpha") == []
    if store.engine.dialect.name == "sqlite":
        with store.engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")


def test_existing_rows_are_indexed_by_the_migration_and_downgrade_removes_search(db_url: str) -> None:
    upgrade(db_url, "0002")
    engine = open_database(db_url)
    try:
        old = ConversationStore(Database(engine))
        chat_sql(engine, "alice", "written before search existed 之前", title="old title")
        upgrade(db_url)
        assert found(old, "alice", "before search") == ["written before search existed 之前"]
        assert found(old, "alice", "之前") == ["written before search existed 之前"]
        assert found(old, "alice", "old title") == ["old title"]

        command.downgrade(alembic_config(db_url), "0002")
        inspector = inspect(engine)
        assert not any(name.startswith("search_") for name in inspector.get_table_names())
        indexes = [i["name"] for t in ("messages", "conversations") for i in inspector.get_indexes(t)]
        assert not any(name.endswith("_trgm") for name in indexes)
        chat_sql(engine, "alice", "written while search was gone")  # no trigger left behind to fail
        upgrade(db_url)
        assert found(old, "alice", "while search") == ["written while search was gone"]
    finally:
        engine.dispose()


# ---- queries -----------------------------------------------------------------------------------


SPECIAL = [
    "100% sure",
    "snake_case name",
    'she said "hi" twice',
    "glob a*b star",
    "call f(x) now",
    "NEAR the end",
    "it's mine",
    "back\\slash",
    "col body:title",
    "plain words here",
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("%", ["100% sure"]),
        ("100%", ["100% sure"]),
        ("_", ["snake_case name"]),
        ("e_c", ["snake_case name"]),  # `_` is not "any character"
        ("%_%", []),
        ('"hi"', ['she said "hi" twice']),
        ('"', ['she said "hi" twice']),
        ('"hi', ['she said "hi" twice']),
        ("a*b", ["glob a*b star"]),
        ("*", ["glob a*b star"]),
        ("f(x)", ["call f(x) now"]),
        ("(", ["call f(x) now"]),
        ("NEAR", ["NEAR the end"]),
        ("NEAR(the end)", []),
        ("it's", ["it's mine"]),
        ("'", ["it's mine"]),
        ("\\", ["back\\slash"]),
        ("k\\s", ["back\\slash"]),
        ("body:title", ["col body:title"]),
        ("AND OR NOT", []),
        ("^plain", []),
        ("-words", []),
    ],
)
def test_special_characters_are_literal(store: ConversationStore, query: str, expected: list[str]) -> None:
    chat(store, "alice", *SPECIAL)
    assert found(store, "alice", query) == expected


@pytest.mark.parametrize("query", ["", "   ", "\t\n", "　"])
def test_an_empty_query_is_refused(store: ConversationStore, query: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        search(store, "alice", query)


def test_a_too_long_query_is_refused(store: ConversationStore) -> None:
    chat(store, "alice", "x" * 300)
    with pytest.raises(ValueError, match="at most 200"):
        search(store, "alice", "x" * (MAX_QUERY_CHARS + 1))
    assert len(search(store, "alice", "x" * MAX_QUERY_CHARS)) == 1
    with pytest.raises(ValueError, match="NUL"):
        search(store, "alice", "a\x00b")
    with pytest.raises(ValueError, match="limit"):
        search(store, "alice", "x", limit=0)
    with pytest.raises(ValueError, match="offset"):
        search(store, "alice", "x", offset=-1)


# ---- results -----------------------------------------------------------------------------------


def test_newest_first_and_pages(store: ConversationStore) -> None:
    first = chat(store, "alice", "note 1")
    streaming = store.start_assistant_message("alice", first)
    store.save_partial("alice", streaming.id, "note 2")
    second = chat(store, "alice", "note 3")
    third = store.create_conversation("alice")
    store.add_message("alice", third.id, "user", "note 4")
    reply = store.start_assistant_message("alice", third.id)
    store.save_partial("alice", reply.id, "note 5")
    assert found(store, "alice", "note") == ["note 5", "note 4", "note 3", "note 2", "note 1"]
    # A reply that streams on makes its message the most recent.
    store.save_partial("alice", streaming.id, "note 2 edited")
    hits = search(store, "alice", "note")
    assert [_text(store, "alice", h) for h in hits][:2] == ["note 2 edited", "note 5"]
    assert [h.updated_at for h in hits] == sorted((h.updated_at for h in hits), reverse=True)
    assert found(store, "alice", "note", limit=2) == ["note 2 edited", "note 5"]
    assert found(store, "alice", "note", limit=2, offset=2) == ["note 4", "note 3"]
    assert found(store, "alice", "note", limit=2, offset=4) == ["note 1"]
    assert found(store, "alice", "note", offset=10) == []
    assert {h.conversation_id for h in hits} == {first, second, third.id}


def test_snippets_cut_around_the_first_match_and_mark_every_term(store: ConversationStore) -> None:
    before = "前面的文字。" * 20 + " lots of padding text before the answer, "
    after = " and then a long tail of words that goes on " + "后面的文字。" * 20
    chat(store, "alice", before + "The Great Wall 长城 is long" + after)
    (hit,) = search(store, "alice", "great 长城")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert 80 <= len(hit.snippet) <= 82
    assert [hit.snippet[s:e] for s, e in hit.match] == ["Great", "长城"]
    assert_highlights(hit, ["great", "长城"])

    chat(store, "alice", "short\n\nline  长城")
    short = search(store, "alice", "长城")
    hit = next(h for h in short if h.snippet.startswith("short"))
    assert (hit.snippet, hit.match) == ("short line 长城", [(11, 13)])


def test_make_snippet_edges() -> None:
    assert make_snippet("abc", ["b"]) == ("abc", [(1, 2)])
    text = "x" * 100 + "needle"
    snippet, spans = make_snippet(text, ["NEEDLE"])
    assert snippet.startswith("…") and snippet.endswith("needle") and len(snippet) == 81
    assert [snippet[s:e] for s, e in spans] == ["needle"]
    snippet, spans = make_snippet("needle" + "y" * 100, ["needle"])
    assert snippet.startswith("needle") and snippet.endswith("…") and spans == [(0, 6)]
    # A term longer than the snippet still fits whole.
    long_term = "z" * 120
    snippet, spans = make_snippet("a " * 50 + long_term + " b" * 50, [long_term])
    assert [snippet[s:e] for s, e in spans] == [long_term]
    # Overlapping terms: the longer one is marked.
    assert make_snippet("abcdef", ["bc", "bcd"]) == ("abcdef", [(1, 4)])
    # Not found (the database folded case differently): the start, unmarked.
    assert make_snippet("a" * 100, ["q"]) == ("a" * 80 + "…", [])
