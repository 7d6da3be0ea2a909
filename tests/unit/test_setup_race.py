"""First-run setup under a race, on real SQLite and PostgreSQL: the token makes one administrator,
however many requests (or processes) use it at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from argon2 import PasswordHasher

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.credentials import Passwords
from mingyan.store.conversations import ConversationStore
from mingyan.store.errors import Conflict
from tests.app_server import serve_app

PASSWORD = "correct horse battery"
TOKEN = "setup-token-for-tests"


@pytest.fixture
def url(store: ConversationStore) -> Iterator[str]:
    with serve_app(
        create_app(Settings(auto_titles=False), FakeEngine(n_ctx=2048), store=store, setup_token=TOKEN)
    ) as base:
        yield base


def setup(url: str, username: str, token: str = TOKEN) -> httpx.Response:
    body = {"token": token, "username": username, "password": PASSWORD}
    return httpx.post(url + "/api/auth/setup", json=body, timeout=60)


def test_four_concurrent_setups_make_one_administrator(url: str, store: ConversationStore) -> None:
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: setup(url, f"admin{i}"), range(4)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 1 and all(code in (403, 409) for code in codes if code != 200), codes
    users = AccountStore.open(store.db).users.list_users()
    assert [(u.role, u.username) for u in users] == [
        ("admin", next(r for r in answers if r.status_code == 200).json()["user"]["username"])
    ]
    assert setup(url, "late").status_code == 403
    assert len(AccountStore.open(store.db).ledger.audit_events(100, event="user_created")) == 1


def test_a_refused_setup_leaves_the_token_usable(url: str, store: ConversationStore) -> None:
    assert setup(url, "bad name!").status_code == 400
    assert setup(url, "root").status_code == 200
    assert [u.username for u in AccountStore.open(store.db).users.list_users()] == ["root"]


def test_first_user_is_made_once_by_the_database_itself(store: ConversationStore) -> None:
    """Several processes with their own tokens share one database: the check is in the transaction."""
    fast = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts = AccountStore.open(store.db, passwords=fast)
    start = threading.Barrier(6)

    def first(i: int) -> str:
        start.wait()
        try:
            return accounts.users.create_user(f"user{i}", PASSWORD, first=True).id
        except Conflict as exc:
            assert exc.code == "setup_done"
            return "refused"

    for _ in range(5):  # a race is a matter of timing: several rounds, each on an empty table
        with ThreadPoolExecutor(6) as pool:
            made = [m for m in pool.map(first, range(6)) if m != "refused"]
        assert len(made) == 1 and len(accounts.users.list_users()) == 1
        accounts.users.delete_user(made[0])
    accounts.users.create_user("admin", PASSWORD, role="admin", first=True)
    with pytest.raises(Conflict):
        accounts.users.create_user("another", PASSWORD, first=True)
    accounts.users.create_user("another", PASSWORD)  # without `first`, more users are fine
