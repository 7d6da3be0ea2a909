"""SIGTERM with replies in flight, on a real `mingyan serve` with SmolLM2, on SQLite and PostgreSQL.

The server stops admitting (503 with Retry-After and an OpenAI-style error body; /health says
`draining`), a reply that can finish within the drain timeout finishes and is saved `complete`, a
reply that cannot is saved `interrupted` with exactly the text its client saw, the KV states are
written, and the process exits 0. Non-streamed requests in flight too (a stored reply asked with
`stream: false`, a /v1 completion): the stored one answers 200 with its message saved as it ended,
the /v1 one 200 or a clear 503, and the log has no traceback (once, a CancelledError's did).
"""

from __future__ import annotations

import signal
import threading
import time

import httpx

from tests.conftest import SMOLLM, start_server, stop_server
from tests.integration.test_durable_history import (
    LONG_ANSWER,
    check_integrity,
    sse,
    stored_message,
)

DRAIN_S = 30  # long enough for the short reply on a busy CI machine; far too short for the long one


class StreamedReply(threading.Thread):
    """Posts a message to a stored conversation and reads the whole SSE stream."""

    def __init__(self, api: httpx.Client, cid: str, content: str, max_tokens: int) -> None:
        super().__init__(daemon=True)
        self.api, self.cid = api, cid
        self.body = {"content": content, "settings": {"max_tokens": max_tokens, "temperature": 0.0}}
        self.text = ""
        self.final: dict | None = None
        self.message_id: str | None = None
        self.error: Exception | None = None
        self.going = threading.Event()

    def run(self) -> None:
        try:
            with self.api.stream("POST", f"/conversations/{self.cid}/messages", json=self.body) as r:
                for event in sse(r.iter_lines()):
                    if event["type"] == "start":
                        self.message_id = event["message"]["id"]
                    elif event["type"] in ("snapshot", "delta"):
                        self.text += event["text"]
                        if self.text.strip():
                            self.going.set()
                    elif event["type"] == "done":
                        self.final = event["message"]
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


class Request(threading.Thread):
    """One non-streamed request, answered in `response` (or `error`)."""

    def __init__(self, client: httpx.Client, path: str, body: dict) -> None:
        super().__init__(daemon=True)
        self.client, self.path, self.body = client, path, body
        self.response: httpx.Response | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.response = self.client.post(self.path, json=self.body)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def conversation(api: httpx.Client) -> str:
    r = api.post("/conversations", json={})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_sigterm_drains_then_saves_what_still_runs_and_exits_0(tmp_path, db_url) -> None:
    kv = tmp_path / "kv"
    server = start_server(
        tmp_path,
        SMOLLM,
        "--n-ctx",
        "2048",
        "--database-url",
        db_url,
        "--no-auto-titles",
        "--kv-dir",
        str(kv),
        "--drain-timeout",
        str(DRAIN_S),
        "--n-slots",
        "4",
        # The long reply must outlast the drain timeout on a quiet machine too: one thread, no drafts.
        "--no-speculative",
        "--n-threads",
        "1",
    )
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=120)
        long = StreamedReply(api, conversation(api), LONG_ANSWER, 1500)
        long.start()
        assert long.going.wait(120), f"the long reply did not get going: {long.error!r} {long.final}"
        short = StreamedReply(api, conversation(api), "Say hello.", 4)
        short.start()
        assert short.going.wait(120) or short.final, f"the short reply did not get going: {short.error!r}"
        settings = {"max_tokens": 1500, "temperature": 0.0}
        unstreamed = Request(
            api,
            f"/conversations/{conversation(api)}/messages",
            {"content": LONG_ANSWER, "stream": False, "settings": settings},
        )
        completion = Request(
            httpx.Client(base_url=server.url, timeout=120),
            "/v1/chat/completions",
            {"model": SMOLLM, "max_tokens": 1500, "messages": [{"role": "user", "content": LONG_ANSWER}]},
        )
        for request in (unstreamed, completion):
            request.start()
        time.sleep(2)  # both admitted and generating
        server.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()

        health = wait_for_draining(server.url)
        assert health.status_code == 503 and health.json()["status"] == "draining"
        refused = httpx.post(
            server.url + "/v1/chat/completions",
            timeout=10,
            json={
                "model": SMOLLM,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == "server_shutting_down" and error["type"] == "server_error" and error["message"]

        assert server.process.wait(timeout=DRAIN_S + 60) == 0
        took = time.monotonic() - sent
        for thread in (long, short, unstreamed, completion):
            thread.join(10)
    finally:
        if server.process.poll() is None:
            stop_server(server)
    assert took >= DRAIN_S - 1, f"the server left after {took:.1f}s, before the drain timeout"
    assert short.final is not None and short.final["status"] == "complete", (short.final, short.error)
    assert stored_message(db_url, short.message_id) == ("complete", short.text)
    assert long.final is not None and long.final["status"] == "interrupted", (long.final, long.error)
    assert long.text.strip()
    assert stored_message(db_url, long.message_id) == ("interrupted", long.text)
    assert unstreamed.response is not None and unstreamed.response.status_code == 200, unstreamed.error
    stored = unstreamed.response.json()["message"]
    assert stored["status"] in ("interrupted", "complete") and stored["content"].strip(), stored
    assert stored_message(db_url, stored["id"]) == (stored["status"], stored["content"])
    assert completion.response is not None, completion.error
    if completion.response.status_code != 200:
        assert completion.response.status_code == 503 and completion.response.json()["error"]["message"]
    assert list(kv.rglob("*.kv")), "no KV state was written at shutdown"
    log = server.log.read_text()
    assert "drain timeout" in log and "Traceback" not in log
    check_integrity(db_url)


def test_sigterm_on_an_idle_server_exits_0_at_once(tmp_path) -> None:
    server = start_server(tmp_path, SMOLLM, "--n-ctx", "512", "--drain-timeout", "30")
    try:
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        if server.process.poll() is None:
            stop_server(server)
    assert time.monotonic() - sent < 15  # nothing ran: no waiting for the drain timeout
    assert "mingyan: drained" in server.log.read_text()


def wait_for_draining(url: str) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(url + "/health", timeout=5)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)
