"""Shared fixtures: real `mingyan serve` processes on 127.0.0.1 with real models."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SMOLLM = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"
STARTUP_TIMEOUT_S = 600  # the first start assembles and hashes the model file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mingyan_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINGYAN_")}
    env["MINGYAN_DATA_DIR"] = str(data_dir)
    # Shipped models are assembled once into the normal user cache and reused across runs.
    return env


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=5).json()


def start_server(tmp: Path, model: str | None, *extra: str) -> Server:
    """Start `mingyan serve` (on the default model when `model` is None) and wait until ready."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    cmd = [sys.executable, "-m", "mingyan", "serve", "--port", str(port), *extra]
    if model is not None:
        cmd += ["--model", model]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=mingyan_env(tmp))
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start in {STARTUP_TIMEOUT_S}s:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def smollm_server(tmp_path_factory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("smollm"), SMOLLM, "--n-ctx", "2048")
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def client(smollm_server):
    import openai

    with openai.OpenAI(base_url=smollm_server.base_url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def pytest_sessionfinish(session, exitstatus):
    """A skipped test is a failure: the only skips are for a missing part (PostgreSQL, Chromium),
    and a run that checked nothing there must not report success. `make test` installs the parts
    (tests/system_parts.sh)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        session.exitstatus = 1
        print(f"\n{len(skipped)} test(s) skipped for a missing part; failing the run (see tests/system_parts.sh).")


# Database fixtures (SQLite and PostgreSQL) for every test module that needs a store.
from tests.db_fixtures import db_url, postgres_server, store  # noqa: E402,F401
