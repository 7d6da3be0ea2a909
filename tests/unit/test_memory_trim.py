"""Freed memory goes back to the OS: in a fresh process, a worker thread fills its malloc arena with
256 MiB of small blocks and frees all but every 16th (the kept ones pin the arena, as long-lived
objects do in a server), so glibc keeps the freed pages; one `libc_trim()` returns them and the
RSS falls by most of the freed amount. And the server's periodic trim is off at 0."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from mingyan.api.memory_trim import libc_trim, start_memory_trim

SCRIPT = r"""
import json, threading
from pathlib import Path
from mingyan.api.memory_trim import libc_trim

def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

kept = []
def work():
    blocks = [b"x" * 65536 for _ in range(4096)]  # 256 MiB, every page written
    kept.extend(blocks[::16])
    blocks.clear()

thread = threading.Thread(target=work)
thread.start()
thread.join()
freed = rss_mib()
libc_trim()()
print(json.dumps({"freed": freed, "trimmed": rss_mib(), "kept": len(kept)}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_a_trim_gives_freed_arena_pages_back() -> None:
    assert libc_trim() is not None  # glibc: the CI's Debian and this machine
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    figures = json.loads(out.stdout)
    assert figures["kept"] == 256
    assert figures["freed"] - figures["trimmed"] > 150, figures  # of the 240 MiB freed


def test_no_periodic_trim_at_zero() -> None:
    async def start() -> object:
        return start_memory_trim(0)

    assert asyncio.run(start()) is None
