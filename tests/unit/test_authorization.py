"""Every route of the app, enumerated: 401 without credentials unless publicly allowed; every route
that takes an object id answers 404 to another user (403 for administrators' routes)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app

PASSWORD = "correct horse battery"
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/api/auth/status"),
    ("POST", "/api/auth/setup"),
    ("POST", "/api/auth/login"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
}
# Static pages of the web chat (no data; the page itself signs in through the API).
PUBLIC_PAGE = re.compile(r"^/($|static|setup|login|account|admin|c/)")
# A valid body for each route that needs one, so that what is tested is the authorization.
BODIES = {
    "POST /api/conversations": {},
    "PATCH /api/conversations/{conversation_id}": {"title": "mine now"},
    "POST /api/conversations/{conversation_id}/branch": {"message_id": "{message_id}"},
    "POST /api/conversations/{conversation_id}/messages": {"content": "hi", "stream": False},
    "POST /api/conversations/{conversation_id}/messages/{message_id}/edit": {"content": "x", "stream": False},
    "POST /api/conversations/{conversation_id}/messages/{message_id}/regenerate": {"stream": False},
    "POST /api/conversations/{conversation_id}/messages/{message_id}/approval": {"approve": True},
    "POST /api/admin/tool-servers": {"name": "t", "kind": "http", "url": "http://127.0.0.1:9/mcp"},
    "PATCH /api/admin/tool-servers/{server_id}": {"enabled": False},
    "POST /v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "POST /v1/completions": {"prompt": "hi"},
    "POST /api/auth/password": {"current_password": PASSWORD, "new_password": "another password"},
    "POST /api/keys": {"name": "k"},
    "PATCH /api/keys/{key_id}": {"tokens_per_day": 10},
    "POST /api/admin/users": {"username": "dave", "password": PASSWORD},
    "PATCH /api/admin/users/{user_id}": {"disabled": False},
    "PUT /api/admin/users/{user_id}/quota": {},
}


@dataclass
class World:
    url: str
    app: FastAPI
    ids: dict[str, str]  # alice's objects
    alice: httpx.Client
    bob: httpx.Client  # another, ordinary user


def sign_in(url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    r = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


@pytest.fixture
def world(store: ConversationStore) -> Iterator[World]:
    accounts = AccountStore.open(store.db)
    alice = accounts.users.create_user("alice", PASSWORD)
    accounts.users.create_user("bob", PASSWORD)
    accounts.users.create_user("root", PASSWORD, role="admin")
    app = create_app(Settings(auto_titles=False), FakeEngine(n_ctx=1024), store=store)
    with serve_app(app) as url:
        a = sign_in(url, "alice")
        cid = a.post("/api/conversations", json={"title": "secret"}).json()["id"]
        exchange = a.post(f"/api/conversations/{cid}/messages", json={"content": "secret", "stream": False}).json()
        key = a.post("/api/keys", json={"name": "alice's"}).json()
        file = a.post("/api/files", files={"file": ("secret.txt", "secret note 秘密".encode())}).json()
        ids = {
            "conversation_id": cid,
            "message_id": exchange["user_message"]["id"],
            "key_id": key["id"],
            "user_id": alice.id,
            "file_id": file["id"],
        }
        yield World(url, app, ids, a, sign_in(url, "bob"))


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route: those in the OpenAPI schema (every included router's), and the
    app's own (some, like /metrics and the web pages, stay out of the schema)."""
    found = {(method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations}
    for route in app.routes:
        if isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods - {"HEAD"}}
    return sorted(found)


def fill(template: object, ids: dict[str, str]) -> object:
    if isinstance(template, str):
        return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), template)
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    return template


def call(client: httpx.Client, method: str, path: str, ids: dict[str, str]) -> httpx.Response:
    body = fill(BODIES.get(f"{method} {path}"), ids)
    params = {"q": "secret"} if path == "/api/search" else {}
    return client.request(method, str(fill(path, ids)), json=body, params=params)


def test_every_route_needs_credentials_unless_public(world: World) -> None:
    all_routes = routes(world.app)
    assert len(all_routes) >= 35, all_routes  # the enumeration really sees the app
    hidden = subprocess.run(["grep", "-rn", "include_in_schema=False", "mingyan/api"], capture_output=True, text=True)
    assert hidden.stdout.count("include_in_schema") <= 2, hidden.stdout  # /metrics and the web pages only
    anonymous = httpx.Client(base_url=world.url, timeout=30)
    checked = 0
    for method, path in all_routes:
        r = call(anonymous, method, path, world.ids)
        if (method, path) in PUBLIC or (method == "GET" and PUBLIC_PAGE.match(path)):
            assert r.status_code != 401, (method, path)
            continue
        assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
        assert r.json()["error"]["type"] == "authentication_error"
        checked += 1
    assert checked >= 30
    for route in world.app.routes:  # mounts serve static files only
        if isinstance(route, Mount):
            assert PUBLIC_PAGE.match(route.path), route.path


def test_every_route_with_an_object_id_is_404_to_another_user(world: World) -> None:
    checked = []
    for method, path in routes(world.app):
        if not re.search(r"\{\w+_id\}", path) or PUBLIC_PAGE.match(path):
            continue
        r = call(world.bob, method, path, world.ids)
        expected = 403 if path.startswith("/api/admin/") else 404
        assert r.status_code == expected, (method, path, r.status_code, r.text[:200])
        checked.append((method, path))
    assert len(checked) >= 12, checked
    # ids in the query and in bodies
    r = world.bob.get("/api/export", params={"conversation_id": world.ids["conversation_id"]})
    assert r.status_code == 404
    mine = world.bob.post("/api/conversations", json={}).json()["id"]
    r = world.bob.post(
        f"/api/conversations/{mine}/messages",
        json={"content": "x", "parent_id": world.ids["message_id"], "stream": False},
    )
    assert r.status_code == 404
    r = world.bob.post(f"/api/conversations/{mine}/branch", json={"message_id": world.ids["message_id"]})
    assert r.status_code == 404
    assert world.bob.get("/api/search", params={"q": "secret"}).json()["data"] == []
    assert world.bob.get("/api/files/search", params={"q": "secret"}).json()["data"] == []
    # and alice still has everything
    detail = world.alice.get(f"/api/conversations/{world.ids['conversation_id']}").json()
    assert detail["title"] == "secret" and len(detail["messages"]) == 2
    assert [k["id"] for k in world.alice.get("/api/keys").json()["data"]] == [world.ids["key_id"]]
