"""Connections that send their headers slowly are closed (uvicorn configured as `mingyan serve`
configures it); a normal client, a slow streamed answer and a kept-alive connection are not cut."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from mingyan.api.app import create_app
from mingyan.cli.serve import uvicorn_options
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine
from tests.app_server import serve_app

TIMEOUT_S = 1


@pytest.fixture
def url() -> Iterator[str]:
    settings = Settings(header_timeout_s=TIMEOUT_S)
    options = {k: v for k, v in uvicorn_options(settings).items() if k not in ("host", "port", "log_level")}
    with serve_app(create_app(settings, FakeEngine(n_ctx=2048, token_delay=0.05)), **options) as base:
        yield base


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.settimeout(10)
    return sock


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head


def closed_after(sock: socket.socket, trickle: bytes = b"") -> float:
    """Seconds until the server closes `sock`, sending one byte of `trickle` every 0.2 s meanwhile."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < 10:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.monotonic() - start
        if trickle:
            try:
                sock.sendall(trickle[:1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - start
            trickle = trickle[1:]
    raise AssertionError("the server kept the connection open")


def test_slow_headers_are_closed_while_others_are_served(url: str) -> None:
    silent = connect(url)
    partial = connect(url)
    partial.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    trickling = connect(url)
    trickling.sendall(b"GET /health HTTP/1.1\r\n")
    assert httpx.get(url + "/health", timeout=5).status_code == 200  # a normal client meanwhile
    for sock, trickle in ((silent, b""), (partial, b""), (trickling, b"X-Slow: " + b"a" * 200)):
        assert closed_after(sock, trickle) < TIMEOUT_S + 1.5
        sock.close()


def test_a_kept_alive_connection_gets_the_same_deadline_per_request(url: str) -> None:
    sock = connect(url)
    for _ in range(3):  # requests one after another on one connection, each with whole headers
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(TIMEOUT_S * 0.6)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # then a slow one
    assert closed_after(sock, b"X" * 100) < TIMEOUT_S + 1.5


def test_a_slow_answer_is_not_cut(url: str) -> None:
    body = {"messages": [{"role": "user", "content": "tell me " * 8}], "max_tokens": 60, "stream": True}
    start = time.monotonic()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert time.monotonic() - start > TIMEOUT_S * 2  # longer than the header deadline
    assert lines[-1] == "data: [DONE]"
