"""File helpers shared by the registry: hashing with progress, atomic writes."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

CHUNK = 1024 * 1024


def progress_bar(total: int | None, desc: str, enabled: bool, initial: int = 0) -> tqdm:
    """A byte progress bar on stderr (a no-op bar when disabled)."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
    )


def hash_into(hasher: hashlib._Hash, path: Path, bar: tqdm | None = None) -> None:
    """Feed the bytes of `path` into `hasher`."""
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            hasher.update(chunk)
            if bar is not None:
                bar.update(len(chunk))


def sha256_file(path: Path, progress: bool = False) -> str:
    """The hex sha256 of a file."""
    hasher = hashlib.sha256()
    with progress_bar(path.stat().st_size, f"verifying {path.name}", progress) as bar:
        hash_into(hasher, path, bar)
    return hasher.hexdigest()


def copy_hashing(sources: Iterable[Path], out: BinaryIO, bar: tqdm) -> str:
    """Concatenate `sources` into `out`; return the hex sha256 of everything written."""
    hasher = hashlib.sha256()
    for path in sources:
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                out.write(chunk)
                hasher.update(chunk)
                bar.update(len(chunk))
    return hasher.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the old content or the new, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def one_line(text: object) -> str:
    """Collapse whitespace so a message stays on one line."""
    return " ".join(str(text).split())
