"""PostgreSQL's WAL fills while replies stream, against a real `mingyan serve` with SmolLM2.

The cluster's pg_wal is on a small tmpfs (initdb -X, 1 MiB segments, no recycling, so each new
segment needs new space) and a filler keeps that tmpfs full; a ballast writer (another client of
the database) then needs a new segment: PostgreSQL PANICs, its crash recovery cannot write WAL
either, and the postmaster shuts down. Once space returns the operator's supervisor starts it
again (here: `pg_ctl restart`, as systemd's Restart= would). Meanwhile mingyan answers with clear
errors (503 `database_unavailable` with Retry-After, never a 500 or a traceback; /v1 too, as it
reads accounts and quotas), keeps running, and reconnects by itself; the reply that streamed
throughout is saved once, `complete`, with the text its client saw; the turn completed before is
intact; nothing is written twice (counted).

Mounting a tmpfs needs root, which CI runs as (a skipped test fails the run: tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests import postgres
from tests.conftest import SMOLLM, start_server, stop_server
from tests.integration.test_disk_full import completion, fill, wait_for
from tests.integration.test_drain import StreamedReply, conversation
from tests.integration.test_durable_history import check_integrity
from tests.integration.test_postgres_disk_full import say, stored_messages
from tests.integration.test_postgres_restart import Poller

SIZE_MB = 24  # the WAL's tmpfs: a few 1 MiB segments, then the filler
WAL_OPTIONS = "-c min_wal_size=2MB -c max_wal_size=4MB -c wal_recycle=off"


@pytest.fixture
def small_wal() -> Iterator[tuple[str, Path, Path]]:
    """A cluster whose pg_wal is on a SIZE_MB tmpfs: a database URL, the tmpfs, and the data directory."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and needs root (CI and `make test` run as root)")
    bindir = postgres.find_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: `apt-get install postgresql`")
    with postgres.small_disk(SIZE_MB, "wal") as (disk, wal):
        with postgres.cluster(bindir, ("-X", str(wal), "--wal-segsize=1"), WAL_OPTIONS) as url:
            with psycopg.connect(libpq(url), autocommit=True) as c:
                data = c.execute("SHOW data_directory").fetchone()[0]
            yield url, disk, Path(data)


def libpq(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port} user={u.username} dbname={u.database}"


class Filler(threading.Thread):
    """Keeps the tmpfs full: what PostgreSQL frees there is taken again at once."""

    def __init__(self, disk: Path) -> None:
        super().__init__(daemon=True)
        self.disk, self.stop = disk, threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            fill(self.disk / f"filler-{n % 4}")
            n += 1
            time.sleep(0.02)

    def end(self) -> None:
        self.stop.set()
        self.join(30)
        for path in self.disk.glob("filler-*"):
            path.unlink()


def write_ballast(url: str) -> str:
    """Another client writes until PostgreSQL cannot: the error it got."""
    with psycopg.connect(libpq(url), autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS ballast (x text)")
        for _ in range(100_000):
            try:
                c.execute("INSERT INTO ballast SELECT repeat('x', 2000) FROM generate_series(1, 20)")
            except psycopg.Error as exc:
                return str(exc)
    return ""


def postmaster_down(data: Path) -> bool:
    bindir = postgres.find_binaries()
    assert bindir is not None
    status = subprocess.run(
        postgres._as_user([str(bindir / "pg_ctl"), "-D", str(data), "status"]), capture_output=True, check=False
    )
    return status.returncode != 0


def start_again(data: Path) -> None:
    """What a supervisor does: start the cluster again, with the options it ran with (postmaster.opts)."""
    bindir = postgres.find_binaries()
    assert bindir is not None
    subprocess.run(
        postgres._as_user(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", f"{data}/../again.log", "-w", "-t", "60", "restart"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.mark.timeout(600)
def test_a_full_wal_gives_clear_errors_then_mingyan_reconnects_and_loses_nothing(tmp_path, small_wal) -> None:
    url, disk, data = small_wal
    server = start_server(
        tmp_path,
        SMOLLM,
        *("--n-ctx", "2048", "--n-slots", "2", "--no-auto-titles", "--n-threads", "1"),
        "--database-url",
        url,
    )
    filler = Filler(disk)
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=240)
        cid = conversation(api)
        first = say(api, cid, "Name a colour, in one word.")
        assert first.status_code == 200, first.text
        streaming = StreamedReply(api, conversation(api), "Write a long story about a river.", 200)
        streaming.start()
        assert streaming.going.wait(120), streaming.error
        poller = Poller(server.url)
        poller.start()
        filler.start()
        assert wait_for(lambda: any(disk.glob("filler-*")), 10)
        error = write_ballast(url)
        assert error, "the ballast writer never failed"
        assert wait_for(lambda: postmaster_down(data), 60), "PostgreSQL did not go down"

        refused = api.post("/conversations", json={})
        assert refused.status_code == 503 and refused.headers.get("retry-after"), refused.text
        assert refused.json()["error"]["code"] == "database_unavailable" and "Traceback" not in refused.text
        asked = completion(server.url, "Write a sentence about the number 7.")  # /v1 reads accounts and quotas
        assert asked.status_code == 503 and asked.json()["error"]["code"] == "database_unavailable", asked.text
        assert server.process.poll() is None

        filler.end()  # space returns, and the supervisor starts PostgreSQL again
        start_again(data)
        assert not postmaster_down(data), (data.parent / "again.log").read_text()[-3000:]
        streaming.join(300)
        assert not postmaster_down(data), (data.parent / "again.log").read_text()[-3000:]
        poller.stop.set()
        poller.join(30)
        after = say(api, cid, "And one more colour?")  # reconnected by itself
        assert after.status_code == 200 and after.json()["message"]["status"] == "complete", after.text
    finally:
        if filler.is_alive():
            filler.end()
        stop_server(server)
    assert 500 not in poller.codes and 503 in poller.codes, poller.codes
    assert "503 without Retry-After or code" not in poller.codes
    assert streaming.error is None and streaming.final is not None, (streaming.error, server.log.read_text()[-3000:])
    assert streaming.final["status"] == "complete", streaming.final
    check_integrity(url)
    messages = stored_messages(url)
    turn = sorted((m["role"], m["status"], m["content"]) for m in messages if m["conversation_id"] == streaming.cid)
    assert turn == [("assistant", "complete", streaming.text), ("user", "complete", streaming.body["content"])]
    in_cid = sorted((m["role"], m["status"]) for m in messages if m["conversation_id"] == cid)
    assert in_cid == [("assistant", "complete")] * 2 + [("user", "complete")] * 2, in_cid
    assert first.json()["message"]["content"] in [m["content"] for m in messages]  # completed before: intact
    assert not [m for m in messages if m["status"] == "streaming"]
    assert "Traceback" not in server.log.read_text()
