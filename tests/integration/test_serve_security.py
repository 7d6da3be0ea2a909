"""A real `mingyan serve` (SmolLM2) as an operator starts it: X-Forwarded-For is ignored unless
--forwarded-allow-ips names the proxy, and a client that sends its headers slowly is cut off."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mingyan.accounts.throttle import FAILED_LOGIN_LIMIT
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.db import Database, default_url, open_database
from tests.conftest import SMOLLM, Server, start_server, stop_server

PASSWORD = "correct horse battery"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, AccountStore]]:
    server = start_server(tmp_path, SMOLLM, "--n-ctx", "512", "--header-timeout-s", "2")
    database = open_database(default_url(tmp_path))
    try:
        yield server, AccountStore.open(Database(database))
    finally:
        database.dispose()
        stop_server(server)


def test_forwarded_headers_are_ignored_and_slow_headers_cut_off(served: tuple[Server, AccountStore]) -> None:
    server, accounts = served
    accounts.users.create_user("victim", PASSWORD)
    for i in range(FAILED_LOGIN_LIMIT):
        r = httpx.post(
            server.url + "/api/auth/login",
            json={"username": "victim", "password": "wrong guess"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
            timeout=30,
        )
        assert r.status_code == 401, r.text
    r = httpx.post(
        server.url + "/api/auth/login",
        json={"username": "VICTIM", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.1"},
        timeout=30,
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert {e.ip for e in accounts.ledger.audit_events(100, event="login_failed")} == {"127.0.0.1"}

    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as slow:
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        assert slow.recv(4096) == b""  # closed by the server, with nothing sent
        assert time.monotonic() - start < 5
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200
