"""Account rules over real HTTP on SQLite and PostgreSQL: missing credentials are answered 401 before
a bad body's 400; at most 100 active API keys per account; no username that looks like another."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.accounts.keys import MAX_ACTIVE_KEYS
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app

PASSWORD = "correct horse battery"


@pytest.fixture
def url(store: ConversationStore) -> Iterator[str]:
    with serve_app(create_app(Settings(auto_titles=False), FakeEngine(n_ctx=2048), store=store)) as base:
        yield base


def sign_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    r = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/conversations"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/api/keys"),
        ("PATCH", "/api/conversations/c1"),
        ("POST", "/api/admin/users"),
        ("POST", "/api/auth/password"),
    ],
)
def test_missing_credentials_are_answered_before_a_malformed_body(
    url: str, store: ConversationStore, method: str, path: str
) -> None:
    AccountStore.open(store.db).users.create_user("someone", PASSWORD)
    anonymous = httpx.Client(base_url=url, timeout=60)
    for body in (b"{not json", b'{"unknown": 1}', b"[]"):
        r = anonymous.request(method, path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 401, (body, r.text)
        assert r.json()["error"]["type"] == "authentication_error" and r.headers["www-authenticate"] == "Bearer"
    signed_in = sign_in(url, "someone")  # with credentials, the body's problem is what is said
    r = signed_in.request(method, path, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code in (400, 403), r.text  # 403: the admin route, for a plain user
    r = httpx.post(url + "/api/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400  # a public route has no credentials to check


def test_active_api_keys_are_capped(url: str, store: ConversationStore) -> None:
    accounts = AccountStore.open(store.db)
    owner = accounts.users.create_user("keymaker", PASSWORD)
    for i in range(MAX_ACTIVE_KEYS - 5):
        accounts.keys.create_key(owner.id, f"k{i}")
    client = sign_in(url, "keymaker")
    with ThreadPoolExecutor(10) as pool:  # made at once: counted one by one
        codes = sorted(
            pool.map(lambda i: client.post("/api/keys", json={"name": f"at once {i}"}).status_code, range(10))
        )
    assert codes == [201] * 5 + [409] * 5
    r = client.post("/api/keys", json={"name": "one more"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_many_keys"
    assert f"at most {MAX_ACTIVE_KEYS} active API keys" in r.json()["error"]["message"]
    assert len(client.get("/api/keys").json()["data"]) == MAX_ACTIVE_KEYS
    revoked = client.get("/api/keys").json()["data"][0]["id"]
    assert client.delete(f"/api/keys/{revoked}").status_code == 200
    assert client.post("/api/keys", json={"name": "after revoking one"}).status_code == 201


@pytest.mark.parametrize("lookalike", ["аdmin", "admın", "ΑDMIN", "adrnin", "ａｄｍｉｎ"])
def test_lookalike_usernames_are_refused(url: str, store: ConversationStore, lookalike: str) -> None:
    AccountStore.open(store.db).users.create_user("admin", PASSWORD, role="admin")
    admin = sign_in(url, "admin")
    r = admin.post("/api/admin/users", json={"username": lookalike, "password": PASSWORD})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] in ("username_lookalike", "username_taken")
    assert [u["username"] for u in admin.get("/api/admin/users").json()["data"]] == ["admin"]
    assert admin.post("/api/admin/users", json={"username": "administrator", "password": PASSWORD}).status_code == 201


def test_lookalike_names_made_at_once_make_one(store: ConversationStore) -> None:
    accounts = AccountStore.open(store.db)
    accounts.users.skeletons("warm")  # the table loads once, before the race
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda name: _try_create(accounts, name), ["olga", "оlga", "οlga", "o1ga"]))
    assert sum(made) == 1 and len(accounts.users.list_users()) == 1


def _try_create(accounts: AccountStore, name: str) -> bool:
    try:
        accounts.users.create_user(name, PASSWORD)
    except Exception as exc:  # noqa: BLE001 - the test counts refusals
        assert getattr(exc, "code", None) == "username_lookalike", exc
        return False
    return True
