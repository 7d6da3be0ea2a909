"""Durable conversations with the real model and a real server process, on SQLite and PostgreSQL.

- kill -9 mid-answer: after a restart the reply is `interrupted`, holds everything streamed up to
  about a second before the kill, the database passes its integrity checks, and the conversation
  goes on;
- a client that drops mid-answer and re-attaches sees the whole answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import SMOLLM, start_server, stop_server

LONG_ANSWER = "Count from 1 to 300, one number per line, in words and digits."
SAVE_WINDOW_S = 1.0  # the durability promise: at most the last second may be lost


def server_args(db_url: str) -> tuple[str, ...]:
    return ("--n-ctx", "2048", "--database-url", db_url, "--no-auto-titles")


def sse(lines: Iterator[str]) -> Iterator[dict]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])


def new_conversation(api: httpx.Client) -> str:
    r = api.post("/conversations", json={"settings": {"max_tokens": 1500, "temperature": 0.0}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


class Reader(threading.Thread):
    """Reads a reply's SSE stream, recording (time, text so far) after every event."""

    def __init__(self, api: httpx.Client, cid: str) -> None:
        super().__init__(daemon=True)
        self.api, self.cid = api, cid
        self.seen: list[tuple[float, str]] = []
        self.message_id: str | None = None
        self.started = threading.Event()

    def run(self) -> None:
        text_so_far = ""
        try:
            with self.api.stream("POST", f"/conversations/{self.cid}/messages", json={"content": LONG_ANSWER}) as r:
                for event in sse(r.iter_lines()):
                    if event["type"] == "start":
                        self.message_id = event["message"]["id"]
                    elif event["type"] in ("snapshot", "delta"):
                        text_so_far = event["text"] if event["type"] == "snapshot" else text_so_far + event["text"]
                        self.seen.append((time.monotonic(), text_so_far))
                        if len(text_so_far) > 200:
                            self.started.set()
        except httpx.HTTPError:
            pass  # the server was killed

    def text_at(self, moment: float) -> str:
        earlier = [t for when, t in self.seen if when <= moment]
        return earlier[-1] if earlier else ""


def check_integrity(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as c:
            if engine.dialect.name == "sqlite":
                assert c.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
                assert c.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            else:
                c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
                indexes = (
                    c.execute(
                        text(
                            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                            "JOIN pg_am a ON a.oid = (SELECT relam FROM pg_class WHERE oid = i.indexrelid) "
                            "WHERE t.relname IN ('conversations', 'messages') AND a.amname = 'btree'"
                        )
                    )
                    .scalars()
                    .all()
                )
                assert indexes
                for index in indexes:
                    c.execute(text("SELECT bt_index_check(CAST(:i AS regclass), true)"), {"i": index})
            orphans = c.exec_driver_sql(
                "SELECT count(*) FROM messages m LEFT JOIN messages p ON p.id = m.parent_id "
                "WHERE m.parent_id IS NOT NULL AND p.id IS NULL"
            ).scalar()
            assert orphans == 0
    finally:
        engine.dispose()


def stored_message(db_url: str, message_id: str) -> tuple[str, str]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            row = c.execute(text("SELECT status, content FROM messages WHERE id = :i"), {"i": message_id}).one()
            return row.status, row.content
    finally:
        engine.dispose()


def test_kill_9_mid_answer_loses_at_most_the_last_second(tmp_path, db_url) -> None:
    server = start_server(tmp_path, SMOLLM, *server_args(db_url))
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=60)
        cid = new_conversation(api)
        reader = Reader(api, cid)
        reader.start()
        assert reader.started.wait(120), "the reply did not get going"
        time.sleep(1.5)
        killed_at = time.monotonic()
        server.process.kill()  # SIGKILL: no shutdown code runs
        server.process.wait()
        reader.join(10)
    finally:
        if server.process.poll() is None:
            stop_server(server)
    assert reader.message_id is not None
    streamed = reader.seen[-1][1]
    status, saved = stored_message(db_url, reader.message_id)
    assert status == "streaming"  # as the crash left it
    assert streamed.startswith(saved)
    assert len(saved) >= len(reader.text_at(killed_at - SAVE_WINDOW_S)), "more than the last second was lost"
    check_integrity(db_url)

    server = start_server(tmp_path, SMOLLM, *server_args(db_url))
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=120)
        detail = api.get(f"/conversations/{cid}").json()
        reply = next(m for m in detail["messages"] if m["id"] == reader.message_id)
        assert (reply["status"], reply["content"]) == ("interrupted", saved)
        assert detail["live"] == []
        follow = api.post(
            f"/conversations/{cid}/messages",
            json={
                "content": "Thanks. Now just say OK.",
                "stream": False,
                "settings": {"max_tokens": 8},
            },
        )
        assert follow.status_code == 200, follow.text
        assert follow.json()["message"]["status"] == "complete"
        assert follow.json()["user_message"]["parent_id"] == reader.message_id
    finally:
        stop_server(server)
    check_integrity(db_url)


def test_reload_mid_answer_reattaches_and_sees_the_full_answer(tmp_path, db_url) -> None:
    server = start_server(tmp_path, SMOLLM, *server_args(db_url))
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=120)
        cid = new_conversation(api)
        body = {"content": "Write a short poem about the sea.", "settings": {"max_tokens": 150}}
        with api.stream("POST", f"/conversations/{cid}/messages", json=body) as r:
            events = sse(r.iter_lines())
            mid = next(events)["message"]["id"]
            first_part = ""
            for event in events:  # read a little, then "reload the page"
                first_part += event["text"]
                if len(first_part) > 20:
                    break
        live = api.get(f"/conversations/{cid}").json()["live"]
        assert live == [mid], "the reply stopped when its client left"
        with api.stream("GET", f"/conversations/{cid}/messages/{mid}/events") as r:
            attached = list(sse(r.iter_lines()))
        text_seen = attached[0]["text"] + "".join(e["text"] for e in attached if e["type"] == "delta")
        final = attached[-1]["message"]
        assert final["status"] == "complete" and final["content"] == text_seen
        assert text_seen.startswith(first_part)
        assert final["completion_tokens"] > 0 and final["model_name"] == SMOLLM
    finally:
        stop_server(server)
