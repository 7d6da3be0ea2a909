"""Start and stop the OpenAI-compatible servers the load benchmarks compare.

Each launcher starts one subprocess on a free 127.0.0.1 port, waits until its health
endpoint answers, yields a `RunningServer` and stops the process on exit. Servers are
always run one at a time, so they never compete for the CPU.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
POLL_S = 0.5
STOP_TIMEOUT_S = 15.0
LOG_TAIL_CHARS = 3000


def default_bench_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("MINGYAN_BENCH_CACHE", Path(base) / "mingyan-bench"))


def default_llama_server() -> Path:
    build = default_bench_cache() / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}" / "build" / "bin"
    return build / "llama-server"


def resolve_gguf(model: str) -> Path:
    """The GGUF file mingyan's registry holds for `model` (assembled and verified if needed)."""
    from mingyan.bootstrap import open_registry
    from mingyan.config import Settings

    return Path(open_registry(Settings(), progress=False).resolve(model).path)


@dataclass(frozen=True)
class ServerConfig:
    model: str  # mingyan registry name
    gguf: Path
    threads: int
    n_ctx: int  # context per slot: the longest conversation
    slots: int = 4  # sequences decoded together (mingyan, llama-server)
    llama_server_bin: Path = field(default_factory=default_llama_server)
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    startup_timeout_s: float = 600.0


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    health_path: str
    model_field: str  # what to send as "model"
    stream_usage: bool = True  # accepts stream_options.include_usage


@dataclass(frozen=True)
class RunningServer:
    name: str
    base_url: str
    launch: Launch
    log_path: Path


def mingyan_launch(cfg: ServerConfig, port: int) -> Launch:
    argv = [
        sys.executable,
        "-m",
        "mingyan",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        cfg.model,
        "--n-threads",
        str(cfg.threads),
        "--n-ctx",
        str(cfg.n_ctx),
        "--n-slots",
        str(cfg.slots),
    ]
    return Launch(argv + cfg.extra_args.get("mingyan", []), "/health", cfg.model)


def llama_server_launch(cfg: ServerConfig, port: int) -> Launch:
    if not cfg.llama_server_bin.exists():
        raise FileNotFoundError(f"{cfg.llama_server_bin} missing: run bench/build_llama_server.sh")
    # -c is the TOTAL context; without --kv-unified each of the -np slots owns -c / -np cells,
    # which is how mingyan sizes its context (n_ctx per slot x n_slots, not unified).
    argv = [
        str(cfg.llama_server_bin),
        "-m",
        str(cfg.gguf),
        "-np",
        str(cfg.slots),
        "-t",
        str(cfg.threads),
        "-c",
        str(cfg.n_ctx * cfg.slots),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if cpu_has_amx():  # llama.cpp's AMX matrix multiply crashes (#20824): weights as mingyan loads them
        argv.append("--no-repack")
    return Launch(argv + cfg.extra_args.get("llama-server", []), "/health", cfg.model)


def cpu_has_amx() -> bool:
    try:
        return "amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def llama_cpp_python_launch(cfg: ServerConfig, port: int) -> Launch:
    argv = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(cfg.gguf),
        "--n_threads",
        str(cfg.threads),
        "--n_ctx",
        str(cfg.n_ctx),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return Launch(argv + cfg.extra_args.get("llama-cpp-python", []), "/v1/models", cfg.model)


LAUNCHERS: dict[str, Callable[[ServerConfig, int], Launch]] = {
    "mingyan": mingyan_launch,
    "llama-server": llama_server_launch,
    "llama-cpp-python": llama_cpp_python_launch,
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-LOG_TAIL_CHARS:]


def wait_ready(proc: subprocess.Popen, url: str, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(POLL_S)
    raise TimeoutError(f"server not ready after {timeout_s:.0f}s:\n{log_tail(log_path)}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def launch(name: str, cfg: ServerConfig, log_dir: Path | None = None) -> Iterator[RunningServer]:
    """Start server `name`, wait for readiness, yield it, stop it."""
    port = free_port()
    spec = LAUNCHERS[name](cfg, port)
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="mingyan-bench-"))
    log_path = log_dir / f"{name}-{port}.log"
    print(f"# starting {name}: {shlex.join(spec.argv)}", file=sys.stderr)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            spec.argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, stdin=subprocess.DEVNULL
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(proc, base + spec.health_path, cfg.startup_timeout_s, log_path)
        yield RunningServer(name, base, spec, log_path)
    finally:
        stop(proc)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def command_output(argv: list[str]) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30, cwd=REPO_ROOT)
        return (done.stdout + done.stderr).strip() or None
    return None


def package_version(name: str) -> str | None:
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version(name)
    return None


def machine_info(llama_server_bin: Path | None = None) -> dict[str, object]:
    info: dict[str, object] = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "llama_cpp_python": package_version("llama-cpp-python"),
        "mingyan": package_version("mingyan"),
        "git_commit": command_output(["git", "rev-parse", "--short", "HEAD"]),
    }
    if llama_server_bin and llama_server_bin.exists():
        version = command_output([str(llama_server_bin), "--version"]) or ""
        info["llama_server"] = " ".join(line for line in version.splitlines() if "version" in line)
    return info


def describe_machine(info: dict[str, object]) -> str:
    return "\n".join(f"# {key}: {value}" for key, value in info.items())
