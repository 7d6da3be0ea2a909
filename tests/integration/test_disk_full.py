"""The data directory's disk fills up, on a real `mingyan serve` with SmolLM2 and SQLite.

The data directory (database and KV-state files) is a 20 MiB tmpfs that a filler file fills to
the last byte while replies stream and KV states are written. Clients get clear errors (503
`database_unavailable` saying the disk is full, never a 500), the database stays intact
(`PRAGMA integrity_check`), the KV cache skips the states it cannot write (no crash, no partial
files), `/v1` chat completions, which write nothing, go on being served, and once the filler is
deleted, stored conversations save again, the reply that streamed meanwhile included.

Mounting a tmpfs needs root, which CI runs as (a skipped test fails the run: tests/conftest.py).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SMOLLM, start_server, stop_server
from tests.integration.test_drain import StreamedReply, conversation

SIZE_MB = 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and needs root (CI and `make test` run as root)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(path: Path) -> None:
    """Write `path` until the file system has not one byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 4096, 1):
            block = b"\0" * chunk
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)


def integrity(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return [row[0] for row in c.execute("PRAGMA integrity_check")]


def kv_files(kv: Path, pattern: str = "*.kv") -> list[Path]:
    return sorted(kv.rglob(pattern))


def wait_for(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def say(api: httpx.Client, cid: str, content: str) -> httpx.Response:
    body = {"content": content, "stream": False, "settings": {"max_tokens": 16, "temperature": 0.0}}
    return api.post(f"/conversations/{cid}/messages", json=body)


def completion(server_url: str, content: str) -> httpx.Response:
    body = {"model": SMOLLM, "messages": [{"role": "user", "content": content}], "max_tokens": 8}
    return httpx.post(server_url + "/v1/chat/completions", json=body, timeout=120)


def test_a_full_disk_gives_clear_errors_keeps_the_database_intact_and_recovers(tmp_path, small_disk) -> None:
    db, kv, filler = small_disk / "mingyan.db", small_disk / "kv", small_disk / "filler"
    server = start_server(
        tmp_path,
        SMOLLM,
        *("--n-ctx", "2048", "--n-slots", "2", "--no-auto-titles"),
        *("--database-url", f"sqlite:///{db}", "--kv-dir", str(kv)),
        *("--cache-ram-mb", "0"),  # every finished reply's KV state goes to disk at once
    )
    try:
        api = httpx.Client(base_url=server.url + "/api", timeout=120)
        cid = conversation(api)
        before = say(api, cid, "Name a colour, in one word, and tell me why you like it.")
        assert before.status_code == 200, before.text
        assert wait_for(lambda: kv_files(kv)), "no KV state was written while there was room"

        streaming = StreamedReply(api, conversation(api), "Write a long story about a river.", 200)
        streaming.start()
        assert streaming.going.wait(120), streaming.error
        fill(filler)  # the disk fills while the reply streams (its partial saves fail)
        states_when_full = len(kv_files(kv))

        refused = say(api, cid, "And another colour?")
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "database_unavailable" and "disk is full" in error["message"], error
        assert refused.headers.get("retry-after")

        served = [completion(server.url, f"Write a sentence about the number {n}.") for n in range(2)]
        assert [r.status_code for r in served] == [200] * 2, [r.text for r in served]
        assert all(r.json()["choices"][0]["message"]["content"] for r in served)
        assert not kv_files(kv, "*.tmp"), "a KV state write left a partial file"
        assert len(kv_files(kv)) == states_when_full  # the disk was full: nothing more was written
        assert api.get(f"/conversations/{cid}").status_code == 200  # reading writes nothing
        assert server.process.poll() is None and server.health()["status"] == "ok"
        assert integrity(db) == ["ok"]

        filler.unlink()  # space returns (within the 60 s the final save of a reply is retried)
        streaming.join(300)
        assert streaming.final is not None and streaming.final["status"] == "complete", (
            streaming.is_alive(),
            streaming.final,
            streaming.error,
            server.log.read_text()[-3000:],
        )
        after = say(api, cid, "And another colour?")
        assert after.status_code == 200, after.text
        assert after.json()["message"]["status"] == "complete"
        assert wait_for(lambda: len(kv_files(kv)) > states_when_full), "KV states are not written again"
        stored = api.get(f"/conversations/{streaming.cid}").json()
        assert [m["content"] for m in stored["messages"] if m["id"] == streaming.message_id] == [streaming.text]
    finally:
        stop_server(server)
    assert integrity(db) == ["ok"]
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "the database's disk is full; partial save skipped" in log  # the reply's saves hit the full disk
    assert "KV state not saved" in log  # and so did the KV writer
