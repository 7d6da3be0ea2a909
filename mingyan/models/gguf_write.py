"""A small, deterministic GGUF (version 3) writer.

Used to build a shipped model's GGUF from data in another format. Its output depends only on
what it is given (keys and tensors are written in the order added), so the file's sha256 can be
pinned. The format's constants (value and tensor type codes) come from the `gguf` package; the
layout follows the GGUF specification: header, key/value pairs, tensor infos, padding to the
alignment, tensor data (each tensor padded to the alignment).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType, GGUFValueType

MAGIC = b"GGUF"
VERSION = 3
_SCALAR_FORMATS = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT32: "<i",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
}


@dataclass(frozen=True)
class Tensor:
    """One tensor: `shape` in ggml order (ne0 first: the row length), `data` its raw bytes."""

    name: str
    shape: tuple[int, ...]
    kind: GGMLQuantizationType
    data: bytes

    def check(self) -> None:
        n = 1
        for dim in self.shape:
            n *= dim
        block, size = GGML_QUANT_SIZES[self.kind]
        if self.shape[0] % block or len(self.data) != n // block * size:
            raise ValueError(f"tensor {self.name}: {len(self.data)} bytes do not fit {self.kind.name} {self.shape}")


class GGUFBuilder:
    """Collect metadata and tensors, then `write` them to a binary stream."""

    def __init__(self, alignment: int = GGUF_DEFAULT_ALIGNMENT) -> None:
        self.alignment = alignment
        self._kv: list[bytes] = []
        self._tensors: list[Tensor] = []

    def add(self, key: str, vtype: GGUFValueType, value: object) -> None:
        self._kv.append(_string(key) + struct.pack("<I", vtype) + _value(vtype, value))

    def add_array(self, key: str, item: GGUFValueType, values: Sequence[object] | np.ndarray) -> None:
        """An array of scalars (numpy arrays are packed directly) or of strings."""
        if item == GGUFValueType.STRING:
            body = b"".join(_string(str(v)) for v in values)
        elif isinstance(values, np.ndarray):
            body = values.astype(np.dtype(_SCALAR_FORMATS[item])).tobytes()
        else:
            body = b"".join(struct.pack(_SCALAR_FORMATS[item], v) for v in values)
        header = struct.pack("<IIQ", GGUFValueType.ARRAY, item, len(values))
        self._kv.append(_string(key) + header + body)

    def add_tensor(self, tensor: Tensor) -> None:
        tensor.check()
        self._tensors.append(tensor)

    def write(self, out: BinaryIO) -> None:
        head = bytearray(MAGIC + struct.pack("<IQQ", VERSION, len(self._tensors), len(self._kv)))
        for kv in self._kv:
            head += kv
        offset = 0
        for tensor in self._tensors:
            head += _string(tensor.name) + struct.pack("<I", len(tensor.shape))
            head += struct.pack(f"<{len(tensor.shape)}Q", *tensor.shape)
            head += struct.pack("<IQ", tensor.kind, offset)
            offset += self._padded(len(tensor.data))
        head += bytes(self._padded(len(head)) - len(head))
        out.write(head)
        for tensor in self._tensors:
            out.write(tensor.data)
            out.write(bytes(self._padded(len(tensor.data)) - len(tensor.data)))

    def _padded(self, n: int) -> int:
        return -(-n // self.alignment) * self.alignment


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _value(vtype: GGUFValueType, value: object) -> bytes:
    if vtype == GGUFValueType.STRING:
        return _string(str(value))
    return struct.pack(_SCALAR_FORMATS[vtype], value)
