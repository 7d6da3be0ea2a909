"""AccountStore over real HTTP (uvicorn in a thread), a fake engine, real SQLite and PostgreSQL:
sign-in, CSRF, API keys by both headers, per-object authorization, quotas, usage, cut-offs, audit."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app

PASSWORD = "correct horse battery"
SETUP_TOKEN = "setup-token-for-tests"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(n_ctx=2048)


@pytest.fixture
def accounts(store: ConversationStore) -> AccountStore:
    return AccountStore.open(store.db)


@pytest.fixture
def url(engine: FakeEngine, store: ConversationStore) -> Iterator[str]:
    settings = Settings(auto_titles=False, quota_requests_per_minute=0, quota_concurrent_streams=0)
    with serve_app(create_app(settings, engine, store=store, setup_token=SETUP_TOKEN)) as base:
        yield base


def sign_in(url: str, username: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def with_key(url: str, key: str, header: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"x-api-key": key}
    return httpx.Client(base_url=url, timeout=30, headers=headers)


def sse(lines) -> Iterator[dict]:
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


def chat(client: httpx.Client, content: str = "hi", **body) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": content}], **body})


# ---- modes, setup, sign-in ---------------------------------------------------------------------


def test_open_mode_until_the_first_account_then_credentials(url: str, accounts: AccountStore) -> None:
    anonymous = httpx.Client(base_url=url, timeout=30)  # keeps no cookies: see below
    assert anonymous.get("/api/auth/status").json() == {"accounts": False, "setup_required": True}
    assert anonymous.post("/api/conversations", json={"title": "before accounts"}).status_code == 201
    # openai's client always sends some key: with no accounts it means nothing
    assert chat(with_key(url, "unused", "bearer")).status_code == 200
    r = anonymous.post("/api/auth/setup", json={"token": "wrong", "username": "root", "password": PASSWORD})
    assert r.status_code == 403
    # local mode cannot make accounts behind setup's back (that would lock the local user out)
    r = anonymous.post("/api/admin/users", json={"username": "sneaky", "password": PASSWORD, "role": "admin"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "setup_required"
    r = httpx.post(url + "/api/auth/setup", json={"token": SETUP_TOKEN, "username": "root", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "admin" and "mingyan_session" in r.cookies
    admin = httpx.Client(base_url=url, timeout=30, cookies=r.cookies)
    admin.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    # the conversations made before accounts now belong to the first administrator
    assert [c["title"] for c in admin.get("/api/conversations").json()["data"]] == ["before accounts"]
    again = {"token": SETUP_TOKEN, "username": "x", "password": PASSWORD}
    assert anonymous.post("/api/auth/setup", json=again).status_code == 403
    assert anonymous.get("/api/conversations").status_code == 401
    assert chat(with_key(url, "unused", "bearer")).status_code == 401
    assert anonymous.get("/api/auth/status").json() == {"accounts": True, "setup_required": False}
    assert anonymous.get("/health").status_code == 200  # public


def test_login_logout_csrf_and_throttle(url: str, accounts: AccountStore) -> None:
    accounts.users.create_user("张三", PASSWORD)
    anonymous = httpx.Client(base_url=url, timeout=30)
    r = anonymous.post("/api/auth/login", json={"username": "张三", "password": "wrong password"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    user = sign_in(url, "张三")
    cookie = user.cookies.get("mingyan_session")
    assert user.get("/api/auth/me").json()["user"]["username"] == "张三"
    # a state-changing request without the CSRF header is refused, with it accepted
    bare = httpx.Client(base_url=url, timeout=30, cookies={"mingyan_session": cookie})
    assert bare.post("/api/conversations", json={}).status_code == 403
    assert bare.get("/api/conversations").status_code == 200
    assert user.post("/api/conversations", json={}).status_code == 201
    assert user.post("/api/auth/logout").status_code == 204
    assert bare.get("/api/conversations").status_code == 401  # the session is gone server-side
    for _ in range(10):
        anonymous.post("/api/auth/login", json={"username": "张三", "password": "nope nope"})
    r = anonymous.post("/api/auth/login", json={"username": "张三", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    events = [e.event for e in accounts.ledger.audit_events(100)]
    assert events.count("login_failed") == 11 and "login" in events and "logout" in events


def test_password_change_keeps_this_session_only(url: str, accounts: AccountStore) -> None:
    accounts.users.create_user("alice", PASSWORD)
    here, elsewhere = sign_in(url, "alice"), sign_in(url, "alice")
    r = here.post("/api/auth/password", json={"current_password": "wrong one", "new_password": "n" * 12})
    assert r.status_code == 403
    r = here.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "n" * 12})
    assert r.status_code == 204
    assert here.get("/api/auth/me").status_code == 200
    assert elsewhere.get("/api/auth/me").status_code == 401
    sign_in(url, "alice", "n" * 12)


# ---- API keys: the same checks through both headers ----------------------------------------------


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_api_keys_by_either_header(url: str, accounts: AccountStore, header: str) -> None:
    accounts.users.create_user("alice", PASSWORD)
    alice = sign_in(url, "alice")
    r = alice.post("/api/keys", json={"name": "laptop"})
    assert r.status_code == 201
    created = r.json()
    plaintext = created["key"]
    listed = alice.get("/api/keys").json()["data"]
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    assert plaintext.startswith(listed[0]["prefix"])
    client = with_key(url, plaintext, header)
    assert chat(client).status_code == 200
    assert client.post("/api/conversations", json={}).status_code == 201  # no CSRF needed with a key
    assert with_key(url, plaintext + "x", header).get("/v1/models").status_code == 401
    assert alice.delete(f"/api/keys/{created['id']}").status_code == 200
    assert chat(client).status_code == 401
    r = client.get("/api/conversations")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_disabled_account_keys_stop_working_by_either_header(url: str, accounts: AccountStore, header: str) -> None:
    accounts.users.create_user("root", PASSWORD, role="admin")
    bob = accounts.users.create_user("bob", PASSWORD)
    _, plaintext = accounts.keys.create_key(bob.id, "k")
    client = with_key(url, plaintext, header)
    assert chat(client).status_code == 200
    admin = sign_in(url, "root")
    assert admin.patch(f"/api/admin/users/{bob.id}", json={"disabled": True}).json()["disabled"] is True
    assert chat(client).status_code == 401
    assert admin.patch(f"/api/admin/users/{bob.id}", json={"disabled": False}).status_code == 200
    assert chat(client).status_code == 200


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_quota_refused_before_any_token_by_either_header(
    url: str, accounts: AccountStore, engine: FakeEngine, header: str
) -> None:
    bob = accounts.users.create_user("bob", PASSWORD)
    accounts.ledger.set_quota(bob.id, requests_per_minute=2)
    _, plaintext = accounts.keys.create_key(bob.id, "k")
    client = with_key(url, plaintext, header)
    assert chat(client).status_code == 200
    cid = client.post("/api/conversations", json={}).json()["id"]
    assert client.post(f"/api/conversations/{cid}/messages", json={"content": "a", "stream": False}).status_code == 200
    before = (len(engine.requests), engine.generated, engine.stats().requests_total)
    for attempt in (
        lambda: chat(client),
        lambda: chat(client, stream=True),
        lambda: client.post(f"/api/conversations/{cid}/messages", json={"content": "b"}),
    ):
        r = attempt()
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "quota_exceeded" and int(r.headers["retry-after"]) >= 1
    assert (len(engine.requests), engine.generated, engine.stats().requests_total) == before  # engine untouched
    messages = client.get(f"/api/conversations/{cid}").json()["messages"]
    assert len(messages) == 2  # the refused message wrote nothing


def test_key_limits_and_daily_tokens(url: str, accounts: AccountStore) -> None:
    accounts.users.create_user("bob", PASSWORD)
    bob_client = sign_in(url, "bob")
    key = bob_client.post("/api/keys", json={"name": "small", "limits": {"tokens_per_day": 5}}).json()
    client = with_key(url, key["key"], "bearer")
    assert chat(client).status_code == 200  # uses more than 5 tokens
    r = chat(client)
    assert r.status_code == 429 and "this API key" in r.json()["error"]["message"]
    assert chat(bob_client).status_code == 200  # the account itself has no daily limit
    r = bob_client.patch(f"/api/keys/{key['id']}", json={"tokens_per_day": None})
    assert r.status_code == 200 and r.json()["limits"]["tokens_per_day"] is None
    assert chat(client).status_code == 200  # the key's own limit is gone
    assert bob_client.patch(f"/api/keys/{key['id']}", json={"tokens_per_day": 0}).status_code == 400
    usage = bob_client.get("/api/usage").json()["data"]
    assert usage[0]["requests"] == 3 and usage[0]["completion_tokens"] == 3 * len("You said: hi")


def test_concurrent_streams_quota(url: str, accounts: AccountStore, engine: FakeEngine) -> None:
    engine.token_delay = 0.02
    bob = accounts.users.create_user("bob", PASSWORD)
    accounts.ledger.set_quota(bob.id, concurrent_streams=1)
    client = sign_in(url, "bob")
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "x" * 100}],
            "stream": True,
        },
    ) as running:
        events = sse(running.iter_lines())  # keep a reference: a dropped reader closes the stream
        next(events)
        r = chat(client)
        assert r.status_code == 429 and "replies running" in r.json()["error"]["message"]
    deadline = time.monotonic() + 10
    while chat(client).status_code != 200:  # the place frees once the stream has ended
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_usage_own_and_admin(url: str, accounts: AccountStore) -> None:
    accounts.users.create_user("root", PASSWORD, role="admin")
    accounts.users.create_user("bob", PASSWORD)
    bob, admin = sign_in(url, "bob"), sign_in(url, "root")
    chat(bob, "one")
    chat(admin, "two")
    mine = bob.get("/api/usage").json()["data"]
    assert [u["username"] for u in mine] == ["bob"]
    assert bob.get("/api/admin/usage").status_code == 403
    everyone = {u["username"]: u for u in admin.get("/api/admin/usage").json()["data"]}
    assert set(everyone) == {"bob", "root"} and everyone["bob"]["completion_tokens"] == len("You said: one")


# ---- cut-offs ----------------------------------------------------------------------------------


def test_disabling_a_user_cuts_their_live_streams_within_a_second(
    url: str, accounts: AccountStore, engine: FakeEngine
) -> None:
    engine.token_delay = 0.05
    accounts.users.create_user("root", PASSWORD, role="admin")
    bob = accounts.users.create_user("bob", PASSWORD)
    bob_client, admin = sign_in(url, "bob"), sign_in(url, "root")
    cid = bob_client.post("/api/conversations", json={}).json()["id"]
    ended: dict[str, float] = {}

    def read_v1() -> None:
        with bob_client.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "y" * 400}],
                "stream": True,
            },
        ) as r:
            for event in sse(r.iter_lines()):
                if "error" in event:
                    ended["v1_error"] = time.monotonic()
        ended["v1"] = time.monotonic()

    v1 = threading.Thread(target=read_v1)
    v1.start()
    with bob_client.stream("POST", f"/api/conversations/{cid}/messages", json={"content": "z" * 400}) as r:
        events = sse(r.iter_lines())
        mid = next(events)["message"]["id"]
        next(events), next(events)
        time.sleep(0.3)
        cut_at = time.monotonic()
        assert admin.patch(f"/api/admin/users/{bob.id}", json={"disabled": True}).status_code == 200
        final = [e for e in events if e["type"] == "done"][0]["message"]
        api_ended = time.monotonic()
    v1.join(10)
    assert final["id"] == mid and final["status"] == "stopped"
    assert api_ended - cut_at < 1.0 and ended["v1"] - cut_at < 1.0 and "v1_error" in ended
    assert len(final["content"]) < len("You said: " + "z" * 400)
    assert engine.active == 0
    audit = [e.event for e in accounts.ledger.audit_events(50)]
    assert "user_disabled" in audit


# ---- admin -------------------------------------------------------------------------------------


def test_admin_manages_users_and_reads_the_audit_log(url: str, accounts: AccountStore) -> None:
    accounts.users.create_user("root", PASSWORD, role="admin")
    admin = sign_in(url, "root")
    r = admin.post("/api/admin/users", json={"username": "carol", "password": PASSWORD})
    assert r.status_code == 201
    carol_id = r.json()["id"]
    assert admin.post("/api/admin/users", json={"username": "CAROL", "password": PASSWORD}).status_code == 409
    assert admin.post("/api/admin/users", json={"username": "bad name", "password": PASSWORD}).status_code == 400
    carol = sign_in(url, "carol")
    assert carol.get("/api/admin/users").status_code == 403
    assert carol.get("/api/admin/audit").status_code == 403
    r = admin.put(f"/api/admin/users/{carol_id}/quota", json={"tokens_per_day": 1000})
    assert r.status_code == 200 and r.json()["overrides"]["tokens_per_day"] == 1000
    assert admin.patch(f"/api/admin/users/{carol_id}", json={"role": "admin"}).json()["role"] == "admin"
    cid = carol.post("/api/conversations", json={}).json()["id"]
    assert admin.delete(f"/api/admin/users/{carol_id}").status_code == 204
    assert carol.get("/api/auth/me").status_code == 401
    assert admin.get(f"/api/conversations/{cid}").status_code == 404
    log = admin.get("/api/admin/audit", params={"limit": 100}).json()["data"]
    events = [e["event"] for e in log]
    created = next(e for e in log if e["event"] == "user_created")
    assert created["actor_name"] == "root" and created["actor_id"] and created["target"] == "carol"
    for expected in ("user_created", "quota_changed", "role_changed", "user_deleted", "login"):
        assert expected in events
    assert log[0]["at"] >= log[-1]["at"]
    assert admin.get("/metrics").status_code == 200


def test_deleting_a_conversation_or_a_user_forgets_their_kv_states(
    url: str, accounts: AccountStore, engine: FakeEngine
) -> None:
    accounts.users.create_user("root", PASSWORD, role="admin")
    dave = accounts.users.create_user("dave", PASSWORD)
    admin, client = sign_in(url, "root"), sign_in(url, "dave")
    cid = client.post("/api/conversations", json={}).json()["id"]
    r = client.post(f"/api/conversations/{cid}/messages", json={"content": "hi", "stream": False})
    assert r.status_code == 200, r.text
    assert engine.requests[-1].cache_scope == dave.id and engine.requests[-1].cache_label == cid
    assert chat(client).status_code == 200
    assert engine.requests[-1].cache_scope == dave.id and engine.requests[-1].cache_label == ""
    assert client.delete(f"/api/conversations/{cid}").status_code == 204
    assert engine.forgotten == [(dave.id, cid)]
    assert admin.delete(f"/api/admin/users/{dave.id}").status_code == 204
    assert engine.forgotten == [(dave.id, cid), (dave.id, None)]


def test_quota_is_checked_before_the_prompt_is_prepared(url: str, accounts: AccountStore) -> None:
    # A prompt too long for the context is found only by preparing it (template, tokens): with
    # the quota used up, the answer is the quota's 429, so no preparation work was done.
    erin = accounts.users.create_user("erin", PASSWORD)
    accounts.ledger.set_quota(erin.id, requests_per_minute=1)
    _, plaintext = accounts.keys.create_key(erin.id, "k")
    client = with_key(url, plaintext, "bearer")
    assert chat(client).status_code == 200
    too_long = "word " * 3000  # 15,000 tokens in the fake engine, n_ctx 2048
    for attempt in (lambda: chat(client, too_long), lambda: client.post("/v1/completions", json={"prompt": too_long})):
        r = attempt()
        assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded", r.text
