"""PostgreSQL restarted while replies stream, against a real `mingyan serve` with SmolLM2.

The replies finish and are saved with exactly the text their clients saw (the final save is
retried until the database is back); requests made while it is away get 503 with Retry-After,
never 500; the server reconnects by itself; nothing is written twice.
"""

from __future__ import annotations

import subprocess
import threading
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests import postgres
from tests.conftest import SMOLLM, start_server, stop_server
from tests.integration.test_drain import StreamedReply, conversation
from tests.integration.test_durable_history import check_integrity


def restart_cluster(bindir, url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            data = c.exec_driver_sql("SHOW data_directory").scalar()
    finally:
        engine.dispose()
    log = f"{data}/../restart.log"  # the new postmaster must not hold our pipes open
    subprocess.run(
        postgres._as_user([str(bindir / "pg_ctl"), "-D", data, "-l", log, "-m", "fast", "-w", "-t", "60", "restart"]),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )


class Poller(threading.Thread):
    """Lists conversations over and over, recording every status code."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.codes, self.stop = url, [], threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                r = http.get("/api/conversations")
                self.codes.append(r.status_code)
                if r.status_code == 503 and not (
                    r.headers.get("retry-after") and r.json()["error"]["code"] == "database_unavailable"
                ):
                    self.codes.append("503 without Retry-After or code")
                time.sleep(0.05)


def test_replies_survive_a_postgres_restart(tmp_path) -> None:
    bindir = postgres.find_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: `apt-get install postgresql`")
    with postgres.cluster(bindir) as url:
        server = start_server(
            tmp_path,
            SMOLLM,
            "--n-ctx",
            "2048",
            "--database-url",
            url,
            "--no-auto-titles",
            "--n-threads",
            "1",
            "--n-slots",
            "2",
        )
        try:
            api = httpx.Client(base_url=server.url + "/api", timeout=120)
            replies = [StreamedReply(api, conversation(api), "Write a short story about a cat.", 160) for _ in range(2)]
            for reply in replies:
                reply.start()
            for reply in replies:
                assert reply.going.wait(120), reply.error
            poller = Poller(server.url)
            poller.start()
            restart_cluster(bindir, url)
            for reply in replies:
                reply.join(300)
            poller.stop.set()
            poller.join(30)
            after = api.post(
                f"/conversations/{conversation(api)}/messages",
                json={"content": "Say OK.", "stream": False, "settings": {"max_tokens": 4}},
            )
        finally:
            stop_server(server)
        rows = stored(url)
        check_integrity(url)
    assert 500 not in poller.codes, poller.codes
    assert after.status_code == 200, after.text  # reconnected by itself
    for reply in replies:
        assert reply.final is not None and reply.final["status"] == "complete", (reply.final, reply.error)
        assert rows[reply.message_id] == [("complete", reply.text)]
    assert sum(len(v) for v in rows.values()) == 3  # two replies and the one after: nothing twice
    assert "Traceback" not in server.log.read_text()


def stored(url: str) -> dict[str, list[tuple[str, str]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT id, status, content FROM messages WHERE role = 'assistant'")).all()
    finally:
        engine.dispose()
    out: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        out.setdefault(row.id, []).append((row.status, row.content))
    return out
