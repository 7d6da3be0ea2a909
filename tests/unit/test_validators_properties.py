"""Property tests (hypothesis) for the input validators: any input gets the one documented error or
a clean value — never another exception, never a value that breaks the rules."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mingyan.api.schemas import (
    GenerationSettings,
    LoginRequest,
    MessageCreate,
    check_stops,
)
from mingyan.store.accounts.credentials import (
    check_password,
    check_username,
    username_key,
)
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url
from mingyan.store.errors import ImportFormatError, InvalidValue
from mingyan.store.migrate import upgrade
from mingyan.store.search import make_snippet, parse_query
from mingyan.store.transfer.checks import load_json
from mingyan.store.transfer.mingyan_json import import_file

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@given(st.text(max_size=80))
def test_usernames(name: str) -> None:
    try:
        key = check_username(name)
    except InvalidValue as error:
        assert error.param == "username"
        return
    assert 1 <= len(name) <= 64 and not any(c.isspace() for c in name)
    assert key == username_key(name) == username_key(key)  # the key is stable


@given(st.text(max_size=1100))
def test_passwords(password: str) -> None:
    try:
        normalized = check_password(password)
    except InvalidValue as error:
        assert error.param == "password"
        return
    assert 8 <= len(normalized) <= 1024


@given(st.text(max_size=300))
def test_search_queries(query: str) -> None:
    try:
        terms = parse_query(query)
    except ValueError:
        return
    assert terms and all(t and not any(c.isspace() for c in t) for t in terms)


@given(st.text(max_size=400), st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3))
def test_snippet_offsets_point_at_the_terms(text: str, terms: list[str]) -> None:
    snippet, matches = make_snippet(text, terms)
    lowered = [t.lower() for t in terms]
    for start, end in matches:
        assert 0 <= start < end <= len(snippet)
        assert snippet[start:end].lower() in lowered


@given(st.one_of(st.none(), st.text(max_size=300), st.lists(st.text(max_size=300), max_size=20)))
def test_stop_sequences(value) -> None:
    try:
        check_stops(value)
    except ValueError:
        stops = [value] if isinstance(value, str) else value or []
        assert len(stops) > 16 or any(len(s) > 256 for s in stops)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "temperature",
                "top_p",
                "top_k",
                "min_p",
                "seed",
                "max_tokens",
                "stop",
                "repeat_penalty",
                "other",
            ]
        ),
        json_values,
        max_size=6,
    )
)
def test_generation_settings_accept_only_ranges_native_code_takes(body: dict) -> None:
    try:
        parsed = GenerationSettings.model_validate(body)
    except ValidationError:
        return
    values = parsed.values()
    assert 0 <= values.get("temperature", 0) <= 2
    assert 0 < values.get("top_p", 1) <= 1
    assert 1 <= values.get("max_tokens", 1) <= 1 << 20
    assert 0 <= values.get("seed", 0) < 2**31


@given(json_values)
def test_message_and_login_bodies(body) -> None:
    for model in (MessageCreate, LoginRequest):
        try:
            model.model_validate(body)
        except ValidationError:
            pass


@given(st.binary(max_size=300))
def test_import_bytes_only_raise_the_import_error(data: bytes) -> None:
    try:
        load_json(data)
    except ImportFormatError:
        pass


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConversationStore]:
    url = default_url(tmp_path_factory.mktemp("props"))
    upgrade(url)
    store = ConversationStore(Database.open(url))
    yield store
    store.engine.dispose()


def _rows(store: ConversationStore) -> tuple[int, int]:
    with store.engine.connect() as c:
        return tuple(c.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in ("conversations", "messages"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_import_of_any_json_is_refused_cleanly_or_written_whole(sqlite_store: ConversationStore, value) -> None:
    before = _rows(sqlite_store)
    try:
        result = import_file(sqlite_store, "someone", json.dumps(value).encode())
    except ImportFormatError:
        assert _rows(sqlite_store) == before  # nothing half-written
        return
    assert result.conversation_ids == [] and _rows(sqlite_store) == before  # only an empty file passes
