"""PostgreSQL's disk fills up while replies stream and are saved, against a real `mingyan serve` with SmolLM2.

The database lives in a tablespace on a small tmpfs (a throwaway cluster; its WAL stays on the
ordinary disk, so PostgreSQL itself goes on running and answers `53100 disk_full` to the writes
that need a new page). A filler file fills the tmpfs to the last byte while a reply streams.
Clients get clear errors (503 `database_unavailable` saying the disk is full, with Retry-After;
never a 500, never a traceback), nothing is half-written (every stored user message has exactly
one reply, each complete with its text; the streamed reply is stored once with the text its client
saw; counted), requests that write nothing go on being served (/v1, /health, reading history),
and once the filler is deleted the server saves again by itself.

Mounting a tmpfs needs root, which CI runs as (a skipped test fails the run: tests/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import postgres
from tests.conftest import SMOLLM, start_server, stop_server
from tests.integration.test_disk_full import completion, fill, wait_for
from tests.integration.test_drain import StreamedReply, conversation
from tests.integration.test_durable_history import check_integrity, sse

SIZE_MB = 24  # the new database (a copy of template1, ~8 MiB) and mingyan's tables, then the filler


@pytest.fixture
def small_tablespace() -> Iterator[tuple[str, Path]]:
    """A database whose tablespace is on a SIZE_MB tmpfs: its URL, and the tmpfs's folder."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and needs root (CI and `make test` run as root)")
    bindir = postgres.find_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: `apt-get install postgresql`")
    with postgres.small_disk(SIZE_MB, "tablespace") as (disk, location):
        with postgres.cluster(bindir) as url:
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as c:
                    c.exec_driver_sql(f"CREATE TABLESPACE small LOCATION '{location}'")
                    c.exec_driver_sql("CREATE DATABASE mingyan_small TABLESPACE small")
            finally:
                admin.dispose()
            yield make_url(url).set(database="mingyan_small").render_as_string(hide_password=False), disk


def clear_refusal(r: httpx.Response) -> bool:
    """A 503 that says the disk is full, with Retry-After, in an OpenAI-style body without a traceback."""
    if r.status_code != 503 or "Traceback" in r.text or not r.headers.get("retry-after"):
        return False
    error = r.json()["error"]
    return error["code"] == "database_unavailable" and "disk is full" in error["message"]


class Reply(StreamedReply):
    """A streamed reply that may be refused before it starts (`refusal` then holds that answer)."""

    def __init__(self, api: httpx.Client, cid: str, content: str, max_tokens: int) -> None:
        super().__init__(api, cid, content, max_tokens)
        self.refusal: httpx.Response | None = None

    def run(self) -> None:
        try:
            with self.api.stream("POST", f"/conversations/{self.cid}/messages", json=self.body) as r:
                if r.status_code != 200:
                    r.read()
                    self.refusal = r
                    return
                for event in sse(r.iter_lines()):
                    if event["type"] == "start":
                        self.message_id = event["message"]["id"]
                    elif event["type"] in ("snapshot", "delta"):
                        self.text += event["text"]
                    elif event["type"] == "done":
                        self.final = event["message"]
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def new_conversations_until_refused(api: httpx.Client, limit: int = 400) -> list[httpx.Response]:
    """Create conversations (small writes) until the full disk refuses one."""
    answers = []
    for _ in range(limit):
        answers.append(api.post("/conversations", json={}))
        if answers[-1].status_code != 201:
            break
    return answers


def say(api: httpx.Client, cid: str, content: str) -> httpx.Response:
    body = {"content": content, "stream": False, "settings": {"max_tokens": 6, "temperature": 0.0}}
    return api.post(f"/conversations/{cid}/messages", json=body)


def stored_messages(url: str) -> list[dict]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                text("SELECT id, conversation_id, parent_id, role, status, content FROM messages ORDER BY created_at")
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


@pytest.mark.timeout(600)  # a few short replies, but several wait up to 60 s for their final save
def test_a_full_postgresql_disk_gives_clear_errors_loses_nothing_and_recovers(tmp_path, small_tablespace) -> None:
    url, disk = small_tablespace
    filler = disk / "filler"
    server = start_server(
        tmp_path, SMOLLM, *("--n-ctx", "2048", "--n-slots", "3", "--no-auto-titles"), *("--database-url", url)
    )
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=240)
        cid = conversation(api)
        first = say(api, cid, "Name a colour, in one word, and tell me why you like it.")
        assert first.status_code == 200, first.text
        later = [conversation(api) for _ in range(2)]  # for turns asked while the disk is full

        streaming = Reply(api, conversation(api), "Write a long story about a river.", 60)
        streaming.start()
        assert wait_for(lambda: streaming.text.strip() or streaming.final, 120), (streaming.error, streaming.refusal)
        fill(filler)  # the disk fills while the reply streams and its text is saved

        created = new_conversations_until_refused(api)
        assert created[-1].status_code == 503, f"{len(created)} conversations created on a full disk"
        assert clear_refusal(created[-1]), created[-1].text
        while_full = [Reply(api, c, f"Name a colour, number {n}.", 4) for n, c in enumerate(later)]
        for reply in while_full:  # each is refused at once, or stored and saved once space returns
            reply.start()

        served = completion(server.url, "Write a sentence about the number 7.")  # /v1 writes nothing
        assert served.status_code == 200 and served.json()["choices"][0]["message"]["content"], served.text
        history = api.get(f"/conversations/{cid}")  # reading writes nothing
        assert history.status_code == 200 and len(history.json()["messages"]) == 2, history.text
        assert server.process.poll() is None and server.health()["status"] == "ok"

        filler.unlink()  # space returns (within the 60 s the final save of a reply is retried)
        for reply in (streaming, *while_full):
            reply.join(300)
            assert reply.error is None and not reply.is_alive(), reply.error
        assert streaming.final is not None and streaming.final["status"] == "complete", (
            streaming.final,
            server.log.read_text()[-3000:],
        )
        for reply in while_full:
            assert reply.refusal is None or clear_refusal(reply.refusal), reply.refusal.text
            assert reply.refusal is not None or reply.final["status"] == "complete", reply.final
        after = say(api, cid, "And one more colour?")
        assert after.status_code == 200 and after.json()["message"]["status"] == "complete", after.text
        assert api.post("/conversations", json={}).status_code == 201
    finally:
        stop_server(server)
    check_integrity(url)
    messages = stored_messages(url)
    for reply in (streaming, *while_full):  # a refused turn left nothing; a stored one is there once, whole
        turn = [(m["role"], m["status"], m["content"]) for m in messages if m["conversation_id"] == reply.cid]
        if reply.refusal is not None:
            assert turn == [], turn
        else:
            expected = [("assistant", "complete", reply.text), ("user", "complete", reply.body["content"])]
            assert sorted(turn) == expected, turn
    in_cid = [(m["role"], m["status"]) for m in messages if m["conversation_id"] == cid]
    assert sorted(in_cid) == [("assistant", "complete")] * 2 + [("user", "complete")] * 2, in_cid
    assert not [m for m in messages if m["status"] == "streaming"]
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "the database's disk is full" in log
