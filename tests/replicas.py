"""Two (or more) `mingyan serve --api-replicas` processes on one database, for the replica tests."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SMOLLM, Server, start_server


def start_replicas(tmp: Path, url: str, n_ctx: int, count: int = 2) -> list[Server]:
    """`count` API processes on the database at `url`, each with its own data directory under `tmp`."""
    flags = ("--database-url", url, "--embedding-model", "none", "--n-ctx", str(n_ctx), "--no-auto-titles")
    servers = []
    for i in range(1, count + 1):
        (tmp / str(i)).mkdir()
        servers.append(start_server(tmp / str(i), SMOLLM, *flags, "--api-replicas"))
    return servers
