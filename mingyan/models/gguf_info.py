"""Read a GGUF file's header (metadata and tensor table) without reading the weights.

`gguf.GGUFReader` builds numpy views of every vocabulary string, which takes seconds for a
150k-token vocabulary; this reader streams the header with `struct`, skipping array contents, and
takes the format's constants (value types, quantization block sizes) from the `gguf` package.
It also checks that the tensor data the header promises fits in the file, which catches truncated
downloads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gguf import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGMLQuantizationType,
    GGUFValueType,
)

from mingyan.errors import ModelError
from mingyan.formats.chat_format import describe

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
_SCALARS = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}


class _Corrupt(Exception):
    """The header does not parse; the message says where."""


@dataclass(frozen=True)
class ArraySummary:
    """An array value, described but not read."""

    item_type: str
    count: int


@dataclass
class GGUFHeader:
    version: int
    tensor_count: int
    metadata: dict[str, object] = field(default_factory=dict)
    data_end: int = 0  # bytes the file must have to hold every tensor


class _Stream:
    def __init__(self, source: BinaryIO, size: int) -> None:
        self.source = source
        self.size = size

    def read(self, n: int) -> bytes:
        if n < 0 or self.source.tell() + n > self.size:
            raise _Corrupt(f"value of {n} bytes at offset {self.source.tell()} runs past the end")
        return self.source.read(n)

    def skip(self, n: int) -> None:
        if self.source.tell() + n > self.size:
            raise _Corrupt(f"value of {n} bytes at offset {self.source.tell()} runs past the end")
        self.source.seek(n, 1)

    def unpack(self, fmt: str) -> object:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def u32(self) -> int:
        return int(self.unpack("<I"))  # type: ignore[call-overload]

    def u64(self) -> int:
        return int(self.unpack("<Q"))  # type: ignore[call-overload]

    def string(self) -> str:
        return self.read(self.u64()).decode("utf-8", errors="replace")


def _value_type(code: int) -> GGUFValueType:
    try:
        return GGUFValueType(code)
    except ValueError:
        raise _Corrupt(f"unknown value type {code}") from None


def _read_value(stream: _Stream, vtype: GGUFValueType) -> object:
    if vtype == GGUFValueType.STRING:
        return stream.string()
    if vtype == GGUFValueType.ARRAY:
        item_type, count = _value_type(stream.u32()), stream.u64()
        if item_type == GGUFValueType.STRING:
            for _ in range(count):
                stream.skip(stream.u64())
        elif item_type == GGUFValueType.ARRAY:
            raise _Corrupt("nested arrays are not supported")
        else:
            stream.skip(count * struct.calcsize(_SCALARS[item_type]))
        return ArraySummary(item_type.name.lower(), count)
    return stream.unpack(_SCALARS[vtype])


def _tensor_end(stream: _Stream) -> int:
    """Read one tensor-table entry; return the end offset of its data (relative to the data start)."""
    stream.string()  # name
    n_dims = stream.u32()
    if n_dims > 8:
        raise _Corrupt(f"tensor with {n_dims} dimensions")
    n_elements = 1
    for _ in range(n_dims):
        n_elements *= stream.u64()
    type_code, offset = stream.u32(), stream.u64()
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(type_code)]
    except (ValueError, KeyError):
        return offset  # a quantization newer than our gguf package: only the offset is checked
    return offset + n_elements // block * type_size


def _parse(stream: _Stream) -> GGUFHeader:
    if stream.read(4) != MAGIC:
        raise _Corrupt("missing GGUF magic")
    version = stream.u32()
    if version not in SUPPORTED_VERSIONS:
        raise _Corrupt(f"unsupported GGUF version {version} (supported: 2, 3; big-endian files are not)")
    header = GGUFHeader(version=version, tensor_count=stream.u64())
    kv_count = stream.u64()
    for _ in range(kv_count):
        key = stream.string()
        header.metadata[key] = _read_value(stream, _value_type(stream.u32()))
    ends = [_tensor_end(stream) for _ in range(header.tensor_count)]
    alignment = header.metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise _Corrupt(f"invalid general.alignment {alignment!r}")
    data_start = -(-stream.source.tell() // alignment) * alignment
    header.data_end = data_start + max(ends, default=0)
    return header


def read_header(path: Path) -> GGUFHeader:
    """Parse and sanity-check the header of the GGUF file at `path`; ModelError if it is not one."""
    try:
        with path.open("rb") as source:
            size = path.stat().st_size
            header = _parse(_Stream(source, size))
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except _Corrupt as exc:
        raise ModelError(f"{path} is not a valid GGUF model file: {exc}") from exc
    if header.data_end > size:
        raise ModelError(f"{path} is truncated: its header describes {header.data_end} bytes but the file has {size}")
    return header


def starts_with_magic(path: Path) -> bool:
    with path.open("rb") as source:
        return source.read(4) == MAGIC


def summarize(header: GGUFHeader) -> dict[str, object]:
    """The metadata a user wants to see about a model."""
    meta = header.metadata
    arch = meta.get("general.architecture")
    template = meta.get("tokenizer.chat_template")
    return {
        "gguf_version": header.version,
        "tensor_count": header.tensor_count,
        "general.architecture": arch,
        "general.name": meta.get("general.name"),
        "context_length": meta.get(f"{arch}.context_length") if isinstance(arch, str) else None,
        # Set on embedding models (1 mean, 2 cls, 3 last): what --embedding-model needs.
        "pooling_type": meta.get(f"{arch}.pooling_type") if isinstance(arch, str) else None,
        "has_chat_template": isinstance(template, str) and bool(template),
        "chat_template_length": len(template) if isinstance(template, str) else 0,
        "bos_token_id": meta.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta.get("tokenizer.ggml.eos_token_id"),
    } | describe(
        arch if isinstance(arch, str) else None,
        name if isinstance(name := meta.get("general.name"), str) else None,
        template if isinstance(template, str) else None,
    )
