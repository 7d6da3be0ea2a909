"""AccountStore (users, login sessions, API keys, quotas, usage, audit log) on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from argon2 import PasswordHasher
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.credentials import Passwords
from mingyan.store.accounts.types import Quota
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, open_database
from mingyan.store.errors import AuthFailed, Conflict, InvalidValue, NotFound
from mingyan.store.migrate import alembic_config, head_revision, upgrade
from mingyan.store.search import search
from mingyan.store.tables import Message

PASSWORD = "correct horse 电池 staple"
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class Clock:
    """The time the accounts see; tests move it forward."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CountingHasher(PasswordHasher):
    """A real argon2id hasher with cheap parameters that counts its verifications."""

    def __init__(self, **parameters: int) -> None:
        super().__init__(**{"time_cost": 1, "memory_cost": 1024, "parallelism": 1, **parameters})
        self.verifications = 0

    def verify(self, hash, password):  # type: ignore[no-untyped-def]
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def accounts(store: ConversationStore, clock: Clock, hasher: CountingHasher) -> AccountStore:
    return AccountStore.open(store.db, passwords=Passwords(hasher), clock=clock)


def rows(engine: Engine, sql: str, **params: object) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params)]


def count(engine: Engine, table: str) -> int:
    return rows(engine, f"SELECT count(*) FROM {table}")[0][0]


def every_cell(engine: Engine) -> list[str]:
    """Every value of every row of every table, as text (bytes decoded leniently)."""
    cells = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("utf-8", "replace")
                    cells.append(str(value))
    return cells


# ---- secrets ------------------------------------------------------------------------------------


def test_passwords_are_argon2id_and_no_secret_is_stored(store: ConversationStore, db_url: str, tmp_path: Path) -> None:
    accounts = AccountStore.open(store.db)  # the production parameters
    user = accounts.users.create_user("alice", PASSWORD)
    token, csrf = accounts.users.create_session(user.id, ttl_s=3600, ip="203.0.113.9", user_agent="pytest")
    key, plaintext = accounts.keys.create_key(user.id, "laptop")
    assert plaintext.startswith("my-") and len(plaintext) == 3 + 43 and key.prefix == plaintext[:12]
    accounts.ledger.audit("login", actor=user, ip="203.0.113.9")
    assert accounts.users.authenticate("alice", PASSWORD) == user

    [(password_hash,)] = rows(store.engine, "SELECT password_hash FROM users")
    assert password_hash.startswith("$argon2id$v=19$")
    memory = int(password_hash.split("$")[3].split(",")[0].removeprefix("m="))
    assert memory >= 19 * 1024  # OWASP's minimum for argon2id, in KiB

    secrets = {"password": PASSWORD, "session token": token, "csrf token": csrf, "api key": plaintext}
    cells = every_cell(store.engine)
    for what, secret in secrets.items():
        assert not [cell for cell in cells if secret in cell], f"the {what} is stored"
    if store.engine.dialect.name == "sqlite":  # the files themselves, log included
        store.engine.dispose()
        raw = b"".join(path.read_bytes() for path in tmp_path.glob("mingyan.db*"))
        for what, secret in secrets.items():
            assert secret.encode() not in raw, f"the {what} is in the database file"


def test_password_rules_and_normalization(accounts: AccountStore) -> None:
    for bad, message in [("1234567", "at least 8"), ("x" * 1025, "at most 1024"), (None, "text")]:
        with pytest.raises(ValueError, match=message) as caught:
            accounts.users.create_user("alice", bad)  # type: ignore[arg-type]
        assert isinstance(caught.value, InvalidValue) and caught.value.param == "password"
    assert accounts.users.count_users() == 0
    accounts.users.create_user("alice", "x" * 1024)
    # Full-width input (a Chinese IME's full-width mode) is the same password as half-width.
    accounts.users.create_user("bob", "ｐａｓｓｗｏｒｄ１２３")
    assert accounts.users.authenticate("bob", "password123") is not None
    assert accounts.users.authenticate("bob", "PASSWORD123") is None


# ---- users --------------------------------------------------------------------------------------


def test_unicode_usernames_and_case_blind_uniqueness(accounts: AccountStore) -> None:
    zhang = accounts.users.create_user("张三", PASSWORD)
    alice = accounts.users.create_user("Alice.W-1_", PASSWORD)
    accounts.users.create_user("Straße", PASSWORD)
    accounts.users.create_user("हिन्दी", PASSWORD)  # combining marks belong to the letters
    assert alice.username == "Alice.W-1_"  # kept as typed
    for taken in ("alice.w-1_", "ALICE.W-1_", "ａｌｉｃｅ.w-1_", "张三", "STRASSE"):
        with pytest.raises(Conflict, match="taken"):
            accounts.users.create_user(taken, PASSWORD)
    assert accounts.users.find_user("ALICE.w-1_") == alice
    assert accounts.users.find_user("张三") == zhang
    assert accounts.users.find_user("nobody") is None and accounts.users.find_user("not valid!") is None
    assert accounts.users.authenticate("张三", PASSWORD) == zhang
    assert accounts.users.authenticate("alice.W-1_", PASSWORD) == alice
    for bad in ("", "a b", "tab\tbed", "new\nline", "x" * 65, "bob!", "a@b", "零\u200b宽", "\u0301a", "ﷺ"):
        with pytest.raises(InvalidValue) as caught:
            accounts.users.create_user(bad, PASSWORD)
        assert caught.value.param == "username"
    names = [u.username for u in accounts.users.list_users()]
    assert names == ["Alice.W-1_", "Straße", "हिन्दी", "张三"]
    assert accounts.users.count_users() == 4


def test_authenticate_success_failure_disabled(accounts: AccountStore, hasher: CountingHasher) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    assert accounts.users.authenticate("alice", PASSWORD) == alice
    assert accounts.users.authenticate("alice", PASSWORD + "x") is None
    assert accounts.users.authenticate("alice", "") is None
    before = hasher.verifications
    assert accounts.users.authenticate("nobody", PASSWORD) is None
    assert hasher.verifications == before + 1  # as slow as for a real user
    assert accounts.users.authenticate("bad name!", PASSWORD) is None
    accounts.users.set_disabled(alice.id, True)
    assert accounts.users.authenticate("alice", PASSWORD) is None
    accounts.users.set_disabled(alice.id, False)
    assert accounts.users.authenticate("alice", PASSWORD) == alice
    with pytest.raises(NotFound):
        accounts.users.get_user("0" * 32)
    assert accounts.users.get_user(alice.id) == alice


def test_a_hash_with_old_parameters_is_replaced_on_login(
    store: ConversationStore, accounts: AccountStore, clock: Clock
) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    stronger = AccountStore.open(store.db, passwords=Passwords(CountingHasher(time_cost=2)), clock=clock)
    assert stronger.users.authenticate("alice", PASSWORD + "!") is None  # no rehash on a failed login
    [(old,)] = rows(store.engine, "SELECT password_hash FROM users")
    assert stronger.users.authenticate("alice", PASSWORD) == alice
    [(new,)] = rows(store.engine, "SELECT password_hash FROM users")
    assert "t=1" in old and "t=2" in new and new.startswith("$argon2id$")
    assert stronger.users.authenticate("alice", PASSWORD) == alice
    assert stronger.users.get_user(alice.id).password_changed_at == alice.password_changed_at


def test_change_and_reset_password(accounts: AccountStore, clock: Clock) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    mine, _ = accounts.users.create_session(alice.id, ttl_s=3600)
    other, _ = accounts.users.create_session(alice.id, ttl_s=3600)
    with pytest.raises(AuthFailed):
        accounts.users.set_password(alice.id, "wrong password", "new password 1")
    with pytest.raises(InvalidValue):
        accounts.users.set_password(alice.id, PASSWORD, "short")
    assert accounts.users.authenticate("alice", PASSWORD) is not None
    clock.advance(minutes=10)
    current = accounts.users.resolve_session(mine)[1]
    accounts.users.set_password(alice.id, PASSWORD, "new password 1", keep_session=current.id)
    assert accounts.users.authenticate("alice", PASSWORD) is None
    assert accounts.users.authenticate("alice", "new password 1") is not None
    assert accounts.users.get_user(alice.id).password_changed_at == START + timedelta(minutes=10)
    assert accounts.users.resolve_session(mine) is not None and accounts.users.resolve_session(other) is None
    accounts.users.reset_password(alice.id, "admin chose this")
    assert accounts.users.resolve_session(mine) is None
    assert accounts.users.authenticate("alice", "admin chose this") is not None
    with pytest.raises(NotFound):
        accounts.users.reset_password("0" * 32, "whatever123")


def test_the_last_enabled_admin_stays(accounts: AccountStore) -> None:
    assert not accounts.users.has_admin()
    root = accounts.users.create_user("root", PASSWORD, role="admin")
    alice = accounts.users.create_user("alice", PASSWORD)
    assert accounts.users.has_admin()
    for remove in (
        lambda: accounts.users.set_role(root.id, "user"),
        lambda: accounts.users.set_disabled(root.id, True),
        lambda: accounts.users.delete_user(root.id),
    ):
        with pytest.raises(Conflict, match="last enabled admin"):
            remove()
    assert accounts.users.get_user(root.id) == root
    with pytest.raises(InvalidValue):
        accounts.users.set_role(alice.id, "superuser")
    assert accounts.users.set_role(alice.id, "admin").is_admin
    accounts.users.set_disabled(root.id, True)
    assert accounts.users.has_admin()  # alice
    accounts.users.set_role(root.id, "user")  # a disabled admin is not the last one
    with pytest.raises(Conflict):
        accounts.users.set_role(alice.id, "user")


# ---- login sessions -----------------------------------------------------------------------------


def test_sessions_resolve_touch_and_expire(store: ConversationStore, accounts: AccountStore, clock: Clock) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    token, csrf = accounts.users.create_session(alice.id, ttl_s=3600, ip="198.51.100.7", user_agent="x" * 500)
    user, login = accounts.users.resolve_session(token)
    assert user == alice and login.user_id == alice.id
    assert (login.ip, len(login.user_agent)) == ("198.51.100.7", 200)
    assert login.expires_at == START + timedelta(hours=1)
    assert accounts.users.check_csrf(login, csrf)
    assert not accounts.users.check_csrf(login, token) and not accounts.users.check_csrf(login, "")
    for unknown in ("", "nope", csrf):
        assert accounts.users.resolve_session(unknown) is None

    def last_seen():
        return rows(store.engine, "SELECT last_seen_at FROM login_sessions")[0][0]

    written = last_seen()
    clock.advance(seconds=30)
    assert accounts.users.resolve_session(token)[1].last_seen_at == START
    assert last_seen() == written  # not rewritten within the minute
    clock.advance(seconds=31)
    assert accounts.users.resolve_session(token)[1].last_seen_at == START + timedelta(seconds=61)
    assert last_seen() != written
    clock.now = login.expires_at  # the moment it expires
    assert accounts.users.resolve_session(token) is None
    assert count(store.engine, "login_sessions") == 0  # an expired session goes on sight
    with pytest.raises(InvalidValue):
        accounts.users.create_session(alice.id, ttl_s=0)
    with pytest.raises(NotFound):
        accounts.users.create_session("0" * 32, ttl_s=60)


def test_logout_and_purge(store: ConversationStore, accounts: AccountStore, clock: Clock) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    one, _ = accounts.users.create_session(alice.id, ttl_s=60)
    two, _ = accounts.users.create_session(alice.id, ttl_s=3600)
    three, _ = accounts.users.create_session(alice.id, ttl_s=3600)
    assert accounts.users.delete_session(one) and not accounts.users.delete_session(one)
    assert accounts.users.resolve_session(one) is None and accounts.users.resolve_session(two) is not None
    accounts.users.create_session(alice.id, ttl_s=60)
    clock.advance(minutes=2)
    assert accounts.users.purge_expired_sessions() == 1
    assert accounts.users.delete_sessions(alice.id) == 2
    assert accounts.users.resolve_session(three) is None


def test_disabling_ends_sessions_and_stops_keys(store: ConversationStore, accounts: AccountStore, clock: Clock) -> None:
    accounts.users.create_user("root", PASSWORD, role="admin")
    alice = accounts.users.create_user("alice", PASSWORD)
    token, _ = accounts.users.create_session(alice.id, ttl_s=3600)
    _, plaintext = accounts.keys.create_key(alice.id, "script")
    assert accounts.keys.resolve_key(plaintext)[0] == alice
    disabled = accounts.users.set_disabled(alice.id, True)
    assert disabled.disabled
    assert count(store.engine, "login_sessions") == 0
    assert accounts.users.resolve_session(token) is None
    assert accounts.keys.resolve_key(plaintext) is None
    with pytest.raises(AuthFailed):
        accounts.users.create_session(alice.id, ttl_s=3600)
    accounts.users.set_disabled(alice.id, False)
    assert accounts.keys.resolve_key(plaintext)[0].id == alice.id  # the key works again,
    assert accounts.users.resolve_session(token) is None  # the ended session does not


# ---- API keys -----------------------------------------------------------------------------------


def test_keys_are_owner_checked_and_revocable(store: ConversationStore, accounts: AccountStore, clock: Clock) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    bob = accounts.users.create_user("bob", PASSWORD)
    key, plaintext = accounts.keys.create_key(alice.id, "  laptop  ")
    assert (key.name, key.active, key.last_used_at) == ("laptop", True, None)
    clock.advance(seconds=1)
    newer, _ = accounts.keys.create_key(alice.id, "phone", requests_per_minute=5)
    assert [k.name for k in accounts.keys.list_keys(alice.id)] == ["phone", "laptop"]
    assert accounts.keys.list_keys(bob.id) == []
    for foreign in (
        lambda: accounts.keys.revoke_key(bob.id, key.id),
        lambda: accounts.keys.set_key_limits(bob.id, key.id, tokens_per_day=1),
    ):
        with pytest.raises(NotFound) as caught:
            foreign()
        assert "alice" not in str(caught.value) and "bob" not in str(caught.value)
    with pytest.raises(NotFound):
        accounts.keys.revoke_key(alice.id, "0" * 32)
    user, resolved = accounts.keys.resolve_key(plaintext)
    assert user == alice and resolved.id == key.id and resolved.last_used_at == clock.now
    clock.advance(seconds=20)
    assert accounts.keys.resolve_key(plaintext)[1].last_used_at == clock.now - timedelta(seconds=20)

    revoked = accounts.keys.revoke_key(alice.id, key.id)
    assert revoked.revoked_at == clock.now and not revoked.active
    clock.advance(seconds=5)
    assert accounts.keys.revoke_key(alice.id, key.id).revoked_at == revoked.revoked_at  # idempotent
    assert accounts.keys.resolve_key(plaintext) is None
    assert [k.active for k in accounts.keys.list_keys(alice.id)] == [True, False]
    assert accounts.keys.list_keys(alice.id)[0].limits == Quota(requests_per_minute=5)
    for unknown in ("", "my-", plaintext + "x", "sk-" + plaintext[3:], "my-" + "a" * 500):
        assert accounts.keys.resolve_key(unknown) is None
    for bad_name in ("", "   ", "x" * 101, "tab\there"):
        with pytest.raises(InvalidValue):
            accounts.keys.create_key(alice.id, bad_name)
    with pytest.raises(NotFound):
        accounts.keys.create_key("0" * 32, "ghost")
    assert newer.id != key.id


# ---- deleting a user ----------------------------------------------------------------------------


def test_delete_user_takes_their_data_and_keeps_the_records(store: ConversationStore, accounts: AccountStore) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    bob = accounts.users.create_user("bob", PASSWORD)
    for title in ("alice one", "alice two"):
        conversation = store.create_conversation(alice.id, title=title)
        store.add_message(alice.id, conversation.id, "user", "秘密 question")
        store.add_message(alice.id, conversation.id, "assistant", "秘密 answer")
    kept = store.create_conversation(bob.id, title="bob's")
    store.add_message(bob.id, kept.id, "user", "秘密 of bob")
    accounts.users.create_session(alice.id, ttl_s=3600)
    key, plaintext = accounts.keys.create_key(alice.id, "k")
    accounts.ledger.set_quota(alice.id, tokens_per_day=10)
    accounts.ledger.record_usage(
        alice.id, route="/v1/chat/completions", prompt_tokens=3, completion_tokens=4, api_key_id=key.id
    )
    accounts.ledger.audit("login", actor=alice)

    assert accounts.users.delete_user(alice.id) == 2
    with pytest.raises(NotFound):
        accounts.users.get_user(alice.id)
    assert accounts.users.find_user("alice") is None and accounts.keys.resolve_key(plaintext) is None
    assert store.list_conversations(alice.id, include_archived=True) == []
    for table in ("login_sessions", "api_keys", "quotas"):
        assert count(store.engine, table) == 0, table
    assert rows(store.engine, "SELECT DISTINCT conversation_id FROM messages") == [(kept.id,)]
    assert [hit.conversation_id for hit in search(store, bob.id, "秘密")] == [kept.id]
    assert search(store, alice.id, "秘密") == []
    # The log and the totals stay: the audit row keeps the id as text, usage keeps the name.
    [entry] = accounts.ledger.audit_events()
    assert (entry.actor_id, entry.actor_name, entry.event) == (alice.id, "alice", "login")
    [total] = accounts.ledger.usage_totals()
    assert (total.user_id, total.username, total.requests) == (None, "alice", 1)
    assert rows(store.engine, "SELECT api_key_id FROM usage_records") == [(None,)]
    with pytest.raises(NotFound):
        accounts.users.delete_user(alice.id)
    # A new alice is another user: nothing of the old one comes back.
    again = accounts.users.create_user("alice", PASSWORD)
    assert again.id != alice.id and store.list_conversations(again.id) == []


def test_delete_user_with_a_very_long_conversation(store: ConversationStore, accounts: AccountStore) -> None:
    """A 1,500-message chain: no cascade recursion (SQLite stops at 1,000 levels)."""
    alice = accounts.users.create_user("alice", PASSWORD)
    conversation = store.create_conversation(alice.id)
    with store.sessions.begin() as session:
        parent = None
        for i in range(1500):
            message = Message(conversation_id=conversation.id, parent_id=parent, role="user", content=str(i))
            session.add(message)
            session.flush()
            parent = message.id
    store.add_message(alice.id, conversation.id, "assistant", "the leaf")
    assert accounts.users.delete_user(alice.id) == 1
    assert count(store.engine, "messages") == 0 and count(store.engine, "conversations") == 0


# ---- audit log ----------------------------------------------------------------------------------


def test_the_audit_log_is_append_only(store: ConversationStore, accounts: AccountStore, clock: Clock) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    accounts.ledger.audit("user_created", actor="cli", target="alice", role="user")
    clock.advance(seconds=1)
    accounts.ledger.audit("login_failed", target="alice", ip="192.0.2.1", reason="password")
    clock.advance(seconds=1)
    accounts.ledger.audit("login", actor=alice, ip="192.0.2.1")
    events = accounts.ledger.audit_events()
    assert [e.event for e in events] == ["login", "login_failed", "user_created"]
    assert (events[0].actor_id, events[0].at) == (alice.id, START + timedelta(seconds=2))
    assert (events[1].actor_id, events[1].actor_name, events[1].details) == (None, "", {"reason": "password"})
    assert (events[2].actor_name, events[2].target, events[2].details) == ("cli", "alice", {"role": "user"})
    assert [e.event for e in accounts.ledger.audit_events(limit=1, offset=1)] == ["login_failed"]
    assert [e.id for e in accounts.ledger.audit_events(event="login")] == [events[0].id]
    with pytest.raises(InvalidValue):
        accounts.ledger.audit("")

    tampering = [
        "UPDATE audit_events SET event = 'nothing'",
        "DELETE FROM audit_events",
        f"DELETE FROM audit_events WHERE id = {events[0].id}",
    ]
    if store.engine.dialect.name == "postgresql":
        tampering.append("TRUNCATE audit_events")
    for statement in tampering:
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert accounts.ledger.audit_events() == events
    assert not [name for name in dir(accounts) if "audit" in name and name not in ("audit", "audit_events")]


# ---- usage and quotas ---------------------------------------------------------------------------


def test_usage_totals_and_daily_tokens(accounts: AccountStore, clock: Clock) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    bob = accounts.users.create_user("Bob", PASSWORD)
    accounts.ledger.record_usage(
        alice.id, route="/v1/chat/completions", model="qwen", prompt_tokens=100, cached_tokens=60, completion_tokens=20
    )
    clock.advance(days=1)
    day_two = clock.now.replace(hour=0)
    accounts.ledger.record_usage(alice.id, route="/api/conversations", prompt_tokens=10, completion_tokens=5)
    accounts.ledger.record_usage(alice.id, route="/v1/completions", prompt_tokens=1, completion_tokens=2)
    key, _ = accounts.keys.create_key(bob.id, "script")
    accounts.ledger.record_usage(bob.id, route="/v1/chat/completions", prompt_tokens=7, completion_tokens=7)
    accounts.ledger.record_usage(
        bob.id, route="/v1/chat/completions", prompt_tokens=2, completion_tokens=1, api_key_id=key.id
    )
    accounts.ledger.record_usage(None, route="/v1/models")

    totals = {t.username: t for t in accounts.ledger.usage_totals()}
    assert list(totals) == ["", "alice", "Bob"]  # by name, case-blind
    alice_total = totals["alice"]
    assert (alice_total.user_id, alice_total.requests, alice_total.prompt_tokens) == (alice.id, 3, 111)
    assert (alice_total.cached_tokens, alice_total.completion_tokens) == (60, 27)
    assert (totals[""].user_id, totals[""].requests, totals[""].prompt_tokens) == (None, 1, 0)
    since = accounts.ledger.usage_totals(user_id=alice.id, since=day_two)
    assert [(t.requests, t.prompt_tokens, t.completion_tokens) for t in since] == [(2, 11, 7)]
    assert accounts.ledger.usage_totals(since=clock.now + timedelta(seconds=1)) == []
    naive = day_two.replace(tzinfo=None)  # taken as UTC
    assert accounts.ledger.tokens_used_since(alice.id, naive) == 18
    assert accounts.ledger.tokens_used_since(alice.id, day_two.astimezone(timezone(timedelta(hours=8)))) == 18
    assert accounts.ledger.tokens_used_since(alice.id, START - timedelta(days=1)) == 138
    assert accounts.ledger.tokens_used_since(bob.id, day_two) == 17
    assert accounts.ledger.tokens_used_since(bob.id, day_two, api_key_id=key.id) == 3
    assert accounts.ledger.tokens_used_since("0" * 32, day_two) == 0
    with pytest.raises(InvalidValue):
        accounts.ledger.record_usage(alice.id, route="/v1/completions", prompt_tokens=-1)


def test_quotas_merge_over_defaults_and_keys_narrow_them(accounts: AccountStore) -> None:
    alice = accounts.users.create_user("alice", PASSWORD)
    defaults = Quota(requests_per_minute=60, tokens_per_day=100_000, concurrent_streams=None)
    assert accounts.ledger.get_quota(alice.id, defaults) == defaults
    assert accounts.ledger.get_quota_overrides(alice.id) == Quota()
    assert accounts.ledger.set_quota(alice.id, tokens_per_day=500, concurrent_streams=2) == Quota(
        tokens_per_day=500, concurrent_streams=2
    )
    assert accounts.ledger.get_quota(alice.id, defaults) == Quota(60, 500, 2)
    accounts.ledger.set_quota(alice.id, requests_per_minute=0)  # other values stay
    assert accounts.ledger.get_quota(alice.id, defaults) == Quota(0, 500, 2)
    accounts.ledger.set_quota(alice.id, requests_per_minute=None, tokens_per_day=None)  # back to the defaults
    assert accounts.ledger.get_quota(alice.id, defaults) == Quota(60, 100_000, 2)
    assert accounts.ledger.get_quota(alice.id) == Quota(None, None, 2)

    narrow, _ = accounts.keys.create_key(alice.id, "narrow", requests_per_minute=10, concurrent_streams=5)
    assert accounts.ledger.get_quota(alice.id, defaults, key=narrow) == Quota(10, 100_000, 2)
    plain, _ = accounts.keys.create_key(alice.id, "plain")
    assert accounts.ledger.get_quota(alice.id, defaults, key=plain) == Quota(60, 100_000, 2)
    widened = accounts.keys.set_key_limits(alice.id, plain.id, tokens_per_day=10**9)
    assert accounts.ledger.get_quota(alice.id, defaults, key=widened).tokens_per_day == 100_000  # a key only narrows

    with pytest.raises(TypeError, match="unknown limits"):
        accounts.ledger.set_quota(alice.id, tokens_per_week=5)
    for bad in (-1, 2**31, 1.5, True, "5"):
        with pytest.raises(InvalidValue):
            accounts.ledger.set_quota(alice.id, tokens_per_day=bad)
    with pytest.raises(NotFound):
        accounts.ledger.set_quota("0" * 32, tokens_per_day=5)
    assert accounts.ledger.get_quota_overrides(alice.id) == Quota(None, None, 2)


# ---- migration ----------------------------------------------------------------------------------


ACCOUNT_TABLES = {"users", "login_sessions", "api_keys", "quotas", "usage_records", "audit_events"}


def test_migration_0004_creates_and_removes_only_its_tables(db_url: str) -> None:
    upgrade(db_url)
    engine = open_database(db_url)
    try:
        store = ConversationStore(Database(engine))
        accounts = AccountStore.open(store.db, passwords=Passwords(CountingHasher()))
        alice = accounts.users.create_user("alice", PASSWORD)
        conversation = store.create_conversation(alice.id, title="kept across the downgrade")
        store.add_message(alice.id, conversation.id, "user", "你好 hello")
        assert ACCOUNT_TABLES <= set(inspect(engine).get_table_names())

        command.downgrade(alembic_config(db_url), "0003")
        assert not ACCOUNT_TABLES & set(inspect(engine).get_table_names())
        if engine.dialect.name == "postgresql":
            functions = "SELECT count(*) FROM pg_proc WHERE proname = 'audit_events_append_only'"
            assert rows(engine, functions) == [(0,)]
        # Search (migration 0003) still works: its triggers were never touched.
        assert [hit.conversation_id for hit in search(store, alice.id, "你好")] == [conversation.id]
        with engine.begin() as connection:  # plain SQL: the ORM's tables are those of the newest schema
            connection.execute(
                text(
                    "INSERT INTO messages (id, conversation_id, role, content, status, created_at, updated_at) "
                    "VALUES ('after', :cid, 'assistant', 'after the downgrade', 'complete', "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"cid": conversation.id},
            )
        assert len(search(store, alice.id, "after the downgrade")) == 1

        upgrade(db_url)
        assert rows(engine, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
        assert AccountStore.open(store.db, passwords=Passwords(CountingHasher())).users.count_users() == 0
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_events (at, actor_name, event, target, details) "
                    "VALUES (CURRENT_TIMESTAMP, '', 'x', '', '{}')"
                )
            )
            connection.execute(text("DELETE FROM audit_events"))
    finally:
        engine.dispose()
