"""A real local Ray cluster for the tests: a head and more node processes on this machine, each with
its own temporary directory and custom resources; offline (no dashboard, no usage statistics).

Stopping is scoped to this cluster: every process whose command line names one of its temporary
directories is ended (never `ray stop`, which would end every Ray process of this user).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

OBJECT_STORE_BYTES = 100 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env() -> dict[str, str]:
    """The nodes' environment: this checkout of mingyan importable by the replicas' workers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINGYAN_", "RAY_"))}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # A throwaway cluster on 127.0.0.1: no token authentication (Ray 2.60 turns it on for new
    # clusters, and a second node started apart from the head has no token to present).
    env["RAY_AUTH_MODE"] = "disabled"
    return env


@dataclass
class LocalCluster:
    port: int
    temp_dirs: list[Path] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, args: list[str], resources: dict[str, float]) -> None:
        temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a limit
        self.temp_dirs.append(temp)
        ray = str(Path(sys.executable).with_name("ray"))
        command = [
            ray,
            "start",
            *args,
            "--node-ip-address",
            "127.0.0.1",
            "--resources",
            json.dumps(resources),
            "--temp-dir",
            str(temp),
            "--object-store-memory",
            str(OBJECT_STORE_BYTES),
            "--dashboard-agent-listen-port",
            str(free_port()),
            "--disable-usage-stats",
        ]
        log = Path(f"{temp}.log")
        with open(log, "wb") as out:  # a file, not a pipe: the daemons it starts may keep it open
            code = subprocess.run(command, env=ray_env(), stdout=out, stderr=subprocess.STDOUT, timeout=180).returncode
        if code != 0:
            output = log.read_text(errors="replace")  # before stop(), which removes the log
            self.stop()
            raise RuntimeError(f"ray start failed ({code}):\n{output}")

    def add_node(self, resources: dict[str, float], num_cpus: int = 1) -> None:
        self._start(["--address", self.address, "--num-cpus", str(num_cpus)], resources)

    def processes(self) -> list[int]:
        """The PIDs of this cluster's processes (their command lines name one of its directories)."""
        pids = []
        names = [str(t) for t in self.temp_dirs]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if any(name in cmdline for name in names):
                pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            pids = self.processes()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + wait_s
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)
        for temp in self.temp_dirs:
            shutil.rmtree(temp, ignore_errors=True)
            Path(f"{temp}.log").unlink(missing_ok=True)


def start_cluster(head_resources: dict[str, float], num_cpus: int = 1) -> LocalCluster:
    cluster = LocalCluster(port=free_port())
    cluster._start(
        [
            "--head",
            "--port",
            str(cluster.port),
            "--num-cpus",
            str(num_cpus),
            "--include-dashboard=false",
        ],
        head_resources,
    )
    return cluster
