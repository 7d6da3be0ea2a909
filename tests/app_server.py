"""Run an app under uvicorn in a thread on 127.0.0.1: real HTTP (real disconnects) in unit tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI


@contextmanager
def serve_app(app: FastAPI, **options: Any) -> Iterator[str]:
    """Yield the base URL of `app` served by uvicorn; shut it down (lifespan included) on exit.

    `options` are more uvicorn.Config arguments (host, port and log level are the test's own)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = {**options, "host": "127.0.0.1", "port": port, "log_level": "warning", "lifespan": "on"}
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
