"""Sign-in throttling over real HTTP (uvicorn configured as `mingyan serve` configures it), real
SQLite and PostgreSQL: attempts counted before the password is checked, one counter per username
whatever its width or case, a limit per address across names, forwarded headers believed only
from the proxies the operator names."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mingyan.accounts.throttle import (
    ADDRESS_LIMIT,
    FAILED_LOGIN_LIMIT,
    LoginThrottle,
    TooManyAttempts,
)
from mingyan.api.app import create_app
from mingyan.cli.flags import settings_from_args
from mingyan.cli.main import build_parser
from mingyan.cli.serve import uvicorn_options
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app

PASSWORD = "correct horse battery"


def serve(store: ConversationStore, settings: Settings) -> Iterator[str]:
    app = create_app(settings, FakeEngine(n_ctx=2048), store=store)
    options = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port", "log_level")}
    with serve_app(app, **options) as base:
        yield base


@pytest.fixture
def url(store: ConversationStore) -> Iterator[str]:
    yield from serve(store, Settings(auto_titles=False))


def login(url: str, username: str, password: str = "wrong password", **headers: str) -> httpx.Response:
    return httpx.post(
        url + "/api/auth/login", json={"username": username, "password": password}, headers=headers, timeout=60
    )


def test_concurrent_wrong_passwords_are_counted_before_any_is_checked(url: str, store: ConversationStore) -> None:
    accounts = AccountStore.open(store.db)
    accounts.users.create_user("victim", PASSWORD)
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: login(url, "victim"), range(30)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [401] * FAILED_LOGIN_LIMIT + [429] * (30 - FAILED_LOGIN_LIMIT)
    refused = [r for r in answers if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) > 0 for r in refused)
    assert refused[0].json()["error"]["code"] == "too_many_attempts"
    # only the attempts let through had their password checked (and audited)
    assert len(accounts.ledger.audit_events(100, event="login_failed")) == FAILED_LOGIN_LIMIT
    assert login(url, "victim", PASSWORD).status_code == 429  # even the right password, for now


def test_width_and_case_variants_and_forwarded_headers_share_the_counter(url: str, store: ConversationStore) -> None:
    accounts = AccountStore.open(store.db)
    accounts.users.create_user("victim", PASSWORD)
    for _ in range(FAILED_LOGIN_LIMIT):
        assert login(url, "victim").status_code == 401
    for variant in ("ｖｉｃｔｉｍ", "VICTIM", "Ｖｉｃｔｉｍ"):
        assert login(url, variant).status_code == 429, variant
    for forged in ("203.0.113.7", "198.51.100.1, 10.0.0.1"):
        r = login(url, "victim", **{"X-Forwarded-For": forged, "X-Real-IP": forged, "Forwarded": f"for={forged}"})
        assert r.status_code == 429, forged
    ips = {event.ip for event in accounts.ledger.audit_events(100, event="login_failed")}
    assert ips == {"127.0.0.1"}  # the audit log holds the real peer, not a forged one


def test_per_address_limit_across_usernames(url: str, store: ConversationStore) -> None:
    AccountStore.open(store.db).users.create_user("someone", PASSWORD)
    for i in range(ADDRESS_LIMIT):
        assert login(url, f"name{i}").status_code == 401
    r = login(url, "another-name")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert login(url, "someone", PASSWORD).status_code == 429


def test_a_success_releases_its_reservation(url: str, store: ConversationStore) -> None:
    AccountStore.open(store.db).users.create_user("alice", PASSWORD)
    for i in range(ADDRESS_LIMIT - 1):
        assert login(url, f"nobody{i}").status_code == 401
    for _ in range(3):  # signing in does not use up the address's allowance
        assert login(url, "alice", PASSWORD).status_code == 200
    assert login(url, "nobody").status_code == 401
    assert login(url, "nobody").status_code == 429


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_forwarded_headers_are_believed_from_the_named_proxies_only(store: ConversationStore) -> None:
    accounts = AccountStore.open(store.db)
    accounts.users.create_user("victim", PASSWORD)
    for url in serve(store, Settings(auto_titles=False, forwarded_allow_ips="127.0.0.1")):
        for _ in range(FAILED_LOGIN_LIMIT):
            assert login(url, "victim", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 401
        assert login(url, "victim", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        # behind the proxy, another client is another address
        assert login(url, "victim", PASSWORD, **{"X-Forwarded-For": "198.51.100.9"}).status_code == 200
    assert {e.ip for e in accounts.ledger.audit_events(100, event="login_failed")} == {"203.0.113.7"}


def test_serve_flag_and_uvicorn_options() -> None:
    args = build_parser().parse_args(["serve", "--forwarded-allow-ips", "10.0.0.1,10.1.0.0/16"])
    settings = settings_from_args(args)
    assert settings.forwarded_allow_ips == "10.0.0.1,10.1.0.0/16"
    assert uvicorn_options(settings)["proxy_headers"] is True
    assert uvicorn_options(settings)["forwarded_allow_ips"] == "10.0.0.1,10.1.0.0/16"
    default = uvicorn_options(Settings())
    assert default["proxy_headers"] is False and default["forwarded_allow_ips"] == []


def test_throttle_window_ipv6_networks_and_memory() -> None:
    now = [0.0]
    throttle = LoginThrottle(limit=2, address_limit=3, window_s=60, clock=lambda: now[0])
    throttle.reserve("2001:db8::1", "Bob")
    throttle.reserve("2001:db8::2", "ＢＯＢ")  # same /64, same name
    with pytest.raises(TooManyAttempts) as refused:
        throttle.reserve("2001:db8::ffff", "bob")
    assert refused.value.retry_after_s == 60
    throttle.reserve("2001:db8:0:1::1", "bob")  # another /64 is another client
    now[0] = 60.0
    throttle.reserve("2001:db8::1", "bob")  # the window has passed
    for i in range(30_000):  # counters of expired attempts do not pile up
        now[0] = 120.0 + i * 61
        throttle.reserve(f"10.0.{i // 250}.{i % 250}", f"n{i}")
    assert len(throttle._pairs) + len(throttle._addresses) < 25_000
