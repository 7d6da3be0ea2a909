"""The `.verified` sidecar: proof that a file was hashed, so it need not be hashed again.

`<file>.verified` holds the sha256 together with the file's size and mtime_ns at the time it was
hashed. While size and mtime_ns are unchanged the file is trusted without re-reading it; any write
to the file changes its mtime, which sends it back to full verification.
"""

from __future__ import annotations

import json
from pathlib import Path

from mingyan.models.files import atomic_write_text


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def is_verified(path: Path, sha256: str) -> bool:
    """True when `path` was verified to have `sha256` and has not changed since."""
    try:
        stat = path.stat()
        record = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("sha256") == sha256
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def record_verified(path: Path, sha256: str) -> None:
    """Remember that `path`, as it is now, has `sha256`."""
    stat = path.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    atomic_write_text(sidecar_path(path), json.dumps(record) + "\n")


def forget(path: Path) -> None:
    sidecar_path(path).unlink(missing_ok=True)
