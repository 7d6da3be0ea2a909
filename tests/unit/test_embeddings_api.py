"""/v1/embeddings under accounts: quotas admit it like every /v1 route and its usage is recorded.
Real HTTP (uvicorn in a thread), the real shipped embedding model, a fake chat engine, real
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.bootstrap import open_embedder
from mingyan.config import DEFAULT_EMBEDDING_MODEL, Settings
from mingyan.engine.embedding import LlamaCppEmbedder
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def embedder() -> Iterator[LlamaCppEmbedder]:
    embedder = open_embedder(Settings(n_threads=2), progress=False)
    assert embedder is not None and embedder.info.name == DEFAULT_EMBEDDING_MODEL
    yield embedder
    embedder.close()


@pytest.fixture
def url(store: ConversationStore, embedder) -> Iterator[str]:
    settings = Settings(auto_titles=False, quota_requests_per_minute=0, quota_concurrent_streams=0)
    with serve_app(create_app(settings, FakeEngine(n_ctx=2048), store=store, embedder=embedder)) as base:
        yield base


def test_requests_per_minute_and_usage(url: str, store: ConversationStore) -> None:
    accounts = AccountStore.open(store.db)
    bob = accounts.users.create_user("bob", PASSWORD)
    accounts.ledger.set_quota(bob.id, requests_per_minute=2)
    _, key = accounts.keys.create_key(bob.id, "k")
    client = httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}"})
    tokens = []
    for text in ("你好，世界", ["one", "two"]):
        r = client.post("/v1/embeddings", json={"input": text})
        assert r.status_code == 200, r.text
        tokens.append(r.json()["usage"]["prompt_tokens"])
    r = client.post("/v1/embeddings", json={"input": "three"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
    usage = client.get("/api/usage").json()["data"]
    assert usage[0]["requests"] == 2 and usage[0]["prompt_tokens"] == sum(tokens)
    assert usage[0]["completion_tokens"] == 0


def test_a_refused_input_records_no_usage(url: str, store: ConversationStore) -> None:
    accounts = AccountStore.open(store.db)
    bob = accounts.users.create_user("bob", PASSWORD)
    _, key = accounts.keys.create_key(bob.id, "k")
    client = httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}"})
    r = client.post("/v1/embeddings", json={"input": ["fine", "word " * 1000]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    assert client.get("/api/usage").json()["data"] == []
    assert client.post("/v1/embeddings", json={"input": "fine"}).status_code == 200  # place released


def test_without_an_embedder_the_route_says_so() -> None:
    engine = FakeEngine(n_ctx=256)
    with serve_app(create_app(Settings(), engine)) as base:
        r = httpx.post(base + "/v1/embeddings", json={"input": "x"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_found"
        assert [m["id"] for m in httpx.get(base + "/v1/models").json()["data"]] == [engine.info.name]
