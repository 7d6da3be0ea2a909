"""Clients that never read their SSE streams, against a real `mingyan serve` with SmolLM2.

Raw sockets with a small receive buffer send their requests and read nothing: a /v1 stream and a
stored-conversation reply. Meanwhile another client is served normally; the /v1 stream is cut
once its buffer (--stream-buffer-kb) is full, with an error event the client finds when it reads
at last; the stored reply runs to its end and is saved whatever its client does; the server's
memory stays bounded.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import openai

from tests.conftest import SMOLLM, start_server, stop_server

COUNTING = "Count from 1 to 1000, one number per line, in words and digits."


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def never_reading(port: int, path: str, body: dict) -> socket.socket:
    """Send a POST and read nothing: the window shrinks to zero and the server's writes back up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)  # keeps the kernel's share small
    sock.connect(("127.0.0.1", port))
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    sock.sendall(head.encode() + data)
    return sock


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(1 << 16):
        data += chunk
    return data


def test_a_client_that_never_reads_is_cut_without_holding_up_others(tmp_path) -> None:
    server = start_server(
        tmp_path,
        SMOLLM,
        "--n-ctx",
        "2048",
        "--n-slots",
        "3",
        "--n-threads",
        "1",
        "--no-auto-titles",
        "--stream-buffer-kb",
        "16",
        "--cache-ram-mb",
        "8",  # each reply served meanwhile keeps its KV state in RAM: bounded small, the RSS check sees the streams
    )
    port = int(server.url.rsplit(":", 1)[1])
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=120)
    api = httpx.Client(base_url=server.url + "/api", timeout=60)
    sockets: list[socket.socket] = []
    try:
        client.chat.completions.create(model=SMOLLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
        baseline = rss_kib(server.process.pid)
        cid = api.post("/conversations", json={}).json()["id"]
        sockets.append(
            never_reading(
                port,
                f"/api/conversations/{cid}/messages",
                {
                    "content": "Write three sentences about rivers.",
                    "settings": {"max_tokens": 120},
                },
            )
        )
        slow = never_reading(
            port,
            "/v1/chat/completions",
            {
                "model": SMOLLM,
                "messages": [{"role": "user", "content": COUNTING}],
                "max_tokens": 1900,
                "stream": True,
                "temperature": 0,
            },
        )
        sockets.append(slow)
        rss, served = [], []
        deadline = time.monotonic() + 600
        while "stream cut" not in server.log.read_text():
            assert time.monotonic() < deadline, "the slow /v1 stream was never cut"
            started = time.monotonic()
            reply = client.chat.completions.create(
                model=SMOLLM,
                messages=[{"role": "user", "content": "Name a colour."}],
                max_tokens=12,
            )
            served.append(time.monotonic() - started)
            assert reply.choices[0].message.content
            rss.append(rss_kib(server.process.pid))
        cut_stream = read_all(slow)  # reading at last: what was sent, the error event, the end
        replies = finished_replies(api, cid)
    finally:
        for sock in sockets:
            sock.close()
        stop_server(server)
    assert len(served) >= 2 and max(served) < 60, served
    assert b'"code": "client_too_slow"' in cut_stream
    assert cut_stream.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    assert max(rss) - baseline < 64 * 1024, f"RSS grew from {baseline} KiB to {max(rss)} KiB"
    assert server.process.returncode == 0
    assert [r["status"] for r in replies] == ["complete"] and replies[0]["content"]


def finished_replies(api: httpx.Client, cid: str) -> list[dict]:
    """The stored replies of `cid` once none is live (its client never read a byte of it)."""
    deadline = time.monotonic() + 300
    while (detail := api.get(f"/conversations/{cid}").json())["live"]:
        assert time.monotonic() < deadline, "the stored reply did not finish"
        time.sleep(0.5)
    return [m for m in detail["messages"] if m["role"] == "assistant"]
