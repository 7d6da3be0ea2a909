"""Tiny real GGUF models, generated at test time, one per llama.cpp architecture.

Each model is a real network that llama.cpp loads and runs (1 block, hidden 32, 4 heads;
Q8_0 embedding and output, f16 block weights, f32 norms), carrying the real 151k-token
byte-level BPE tokenizer of the shipped Qwen2.5 model plus the family's special tokens. Its weights
are built, not trained, so that greedy decoding computes a known successor function:

    after -> answer[0] -> answer[1] -> ... -> answer[-1] -> stop

where `after` is the last token of the family's generation prompt and `stop` its
end-of-turn token (marked end-of-generation in the GGUF). Any other last token leads to
`wrong` ("?"), which leads to itself forever: a prompt that does not end the way the
family's template ends makes the model run to max_tokens instead of answering.

How: every attention and FFN weight is zero, so each block adds exactly nothing to the
residual stream and the logits depend only on the last token's embedding. Token
embeddings share a "default" direction (dimension 0, whose output row is `wrong`); the
chain tokens instead get one-hot embeddings in dimensions 1..k, and the output row of
each chain token's successor points along that dimension.

API:
    vocab = read_vocab(gguf_path)                      # once per session (~15 s)
    make_tiny_model(path, FAMILIES["qwen2"], vocab)    # ~16 MB file, ~2 s
    make_tiny_model(path, family, vocab, chat_template=source)  # another template
    make_tiny_model(path, family, vocab, chat_template=None)  # a model without a template
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

HIDDEN, HEADS, FFN, LAYERS, CONTEXT = 32, 4, 64, 1, 1024
HEAD_DIM = HIDDEN // HEADS
LOGIT_SCALE = 4.0
WRONG = "?"
CONTROL = int(gguf.TokenType.CONTROL)


@dataclass(frozen=True)
class Vocab:
    """The byte-level BPE tokenizer read from a GGUF file."""

    tokens: list[str]
    types: list[int]
    merges: list[str]


@dataclass(frozen=True)
class Family:
    """One model family: its llama.cpp architecture, chat format and chosen answer."""

    name: str
    arch: str
    template: str
    after: str  # text of the last token of the generation prompt
    stop: str  # the end-of-turn special token
    answer: tuple[str, ...]  # texts of the tokens the model answers with
    specials: tuple[str, ...] = ()  # control tokens the family needs
    bos: str | None = None
    add_bos: bool = False
    rope_dims: int = HEAD_DIM  # chatglm and glm4 rotate half of each head

    @property
    def answer_text(self) -> str:
        return "".join(self.answer)


def read_vocab(path: Path) -> Vocab:
    """The `tokenizer.ggml.*` tokens, types and merges of the GGUF file at `path`."""
    reader = gguf.GGUFReader(path)

    def field_of(key: str) -> list:
        return reader.fields[key].contents()

    return Vocab(
        tokens=field_of("tokenizer.ggml.tokens"),
        types=[int(t) for t in field_of("tokenizer.ggml.token_type")],
        merges=field_of("tokenizer.ggml.merges"),
    )


def _byte_chars() -> dict[int, str]:
    """GPT-2's byte -> printable character table used by byte-level BPE vocabularies."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), 256)
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class _Tokens:
    """Token lookup in a vocab extended with a family's control tokens."""

    def __init__(self, vocab: Vocab, specials: tuple[str, ...]) -> None:
        self.tokens, self.types = list(vocab.tokens), list(vocab.types)
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.bytes = _byte_chars()
        for text in specials:
            if text not in self.ids:
                self.ids[text] = len(self.tokens)
                self.tokens.append(text)
                self.types.append(CONTROL)
            self.types[self.ids[text]] = CONTROL

    def id(self, text: str) -> int:
        """The id of `text` as one special token, or as one byte-level BPE token."""
        if text in self.ids and self.types[self.ids[text]] == CONTROL:
            return self.ids[text]
        encoded = "".join(self.bytes[b] for b in text.encode("utf-8"))
        if encoded not in self.ids:
            raise ValueError(f"{text!r} is not a single token of the vocabulary")
        return self.ids[encoded]


def _embeddings(n_vocab: int, chain: list[int], wrong: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(token_embd, output) rows: chain[i] -> chain[i + 1]; every other token -> wrong."""
    if len(chain) > HIDDEN // 2:
        raise ValueError("answer too long for the hidden size")
    embd = np.zeros((n_vocab, HIDDEN), dtype=np.float32)
    embd[:, 0] = 1.0
    noise_dims = slice(HIDDEN // 2, HIDDEN)  # outside every output row: no effect on logits
    embd[:, noise_dims] = rng.normal(0.0, 0.05, (n_vocab, HIDDEN // 2))
    output = np.zeros((n_vocab, HIDDEN), dtype=np.float32)
    output[wrong, 0] = LOGIT_SCALE
    for dim, (token, successor) in enumerate(zip(chain, chain[1:], strict=False), start=1):
        embd[token] = 0.0
        embd[token, dim] = 1.0
        output[successor, dim] = LOGIT_SCALE
    return embd, output


def _add_q8(writer: gguf.GGUFWriter, name: str, value: np.ndarray) -> None:
    """The two vocab-sized matrices in Q8_0: 16 MB files instead of 25 MB with f16."""
    q8 = gguf.GGMLQuantizationType.Q8_0
    writer.add_tensor(name, gguf.quants.quantize(value, q8), raw_dtype=q8)


def _block_tensors(arch: str) -> dict[str, tuple[int, ...]]:
    """Shapes (numpy order: out, in) of one block's tensors for `arch`."""
    shapes: dict[str, tuple[int, ...]] = {
        "attn_norm.weight": (HIDDEN,),
        "attn_q.weight": (HIDDEN, HIDDEN),
        "attn_k.weight": (HIDDEN, HIDDEN),
        "attn_v.weight": (HIDDEN, HIDDEN),
        "attn_output.weight": (HIDDEN, HIDDEN),
        "ffn_norm.weight": (HIDDEN,),
        "ffn_down.weight": (HIDDEN, FFN),
    }
    if arch in ("chatglm", "glm4"):  # gate and up fused into one [2 * n_ff] projection
        shapes["ffn_up.weight"] = (2 * FFN, HIDDEN)
    else:
        shapes["ffn_gate.weight"] = (FFN, HIDDEN)
        shapes["ffn_up.weight"] = (FFN, HIDDEN)
    if arch in ("qwen2", "chatglm"):  # these checkpoints carry q/k/v biases
        shapes |= {f"attn_{x}.bias": (HIDDEN,) for x in "qkv"}
    if arch == "glm4":
        shapes |= {"post_attention_norm.weight": (HIDDEN,), "post_ffw_norm.weight": (HIDDEN,)}
    return shapes


def _add_blocks(writer: gguf.GGUFWriter, arch: str) -> None:
    for block in range(LAYERS):
        for name, shape in _block_tensors(arch).items():
            is_norm = name.endswith("norm.weight")
            value = np.ones(shape, np.float32) if is_norm else np.zeros(shape, np.float32)
            if len(shape) == 2:
                value = value.astype(np.float16)
            writer.add_tensor(f"blk.{block}.{name}", value)


def _add_hparams(writer: gguf.GGUFWriter, family: Family, model_name: str) -> None:
    writer.add_name(model_name)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(family.rope_dims)
    writer.add_rope_freq_base(10000.0)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)


def _add_tokenizer(writer, family: Family, tokens: _Tokens, vocab: Vocab, template) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens.tokens)
    writer.add_token_types(tokens.types)
    writer.add_token_merges(vocab.merges)
    stop = tokens.id(family.stop)
    writer.add_eos_token_id(stop)
    writer.add_eot_token_id(stop)
    writer.add_bos_token_id(tokens.id(family.bos) if family.bos else stop)
    writer.add_pad_token_id(stop)
    writer.add_add_bos_token(family.add_bos)
    if template is not None:
        writer.add_chat_template(template)


def make_tiny_model(
    path: Path,
    family: Family,
    vocab: Vocab,
    *,
    chat_template: str | None = "",
    seed: int = 0,
    model_name: str | None = None,
) -> Path:
    """Write a tiny `family.arch` model to `path` that answers `family.answer` then stops.

    `chat_template` is written to `tokenizer.chat_template`: "" (the default) means the
    family's own template, None means no template at all. `model_name` becomes
    `general.name` ("tiny-<family>" by default).
    """
    specials = ("</s>", *family.specials, family.stop, *([family.bos] if family.bos else []))
    tokens = _Tokens(vocab, specials)
    chain = [tokens.id(t) for t in (family.after, *family.answer, family.stop)]
    rng = np.random.default_rng(seed)
    embd, output = _embeddings(len(tokens.tokens), chain, tokens.id(WRONG), rng)
    template = family.template if chat_template == "" else chat_template
    writer = gguf.GGUFWriter(path, family.arch)
    _add_hparams(writer, family, model_name or f"tiny-{family.name}")
    _add_tokenizer(writer, family, tokens, vocab, template)
    _add_q8(writer, "token_embd.weight", embd)
    _add_blocks(writer, family.arch)
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, np.float32))
    _add_q8(writer, "output.weight", output)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _each(open_: str, close: str = "") -> str:
    """A Jinja loop writing every message as `open_` + content + `close`."""
    return "{% for m in messages %}" + open_ + "{{ m.content }}" + close + "{% endfor %}"


def _gen(prompt: str) -> str:
    return "{% if add_generation_prompt %}" + prompt + "{% endif %}"


# The simple templates below render one-user-message chats exactly as the canonical ones
# in mingyan.formats.family_templates do (Qwen's default system prompt aside).
GLM_SPECIALS = ("[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>")
BAICHUAN_ROLE = "{% if m.role == 'user' %}<reserved_106>{% elif m.role == 'assistant' %}<reserved_107>{% endif %}"
ERNIE_ROLE = "{% if m.role == 'user' %}User: {% elif m.role == 'assistant' %}Assistant: {% endif %}"

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family(
            "llama3",
            "llama",
            "{{ bos_token }}"
            + _each("<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n", "<|eot_id|>")
            + _gen("<|start_header_id|>assistant<|end_header_id|>\n\n"),
            after="\n\n",
            stop="<|eot_id|>",
            answer=("Hello", " world"),
            specials=("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"),
            bos="<|begin_of_text|>",
            add_bos=True,
        ),
        Family(
            "qwen2",
            "qwen2",
            _each("<|im_start|>{{ m.role }}\n", "<|im_end|>\n") + _gen("<|im_start|>assistant\n"),
            after="\n",
            stop="<|im_end|>",
            answer=("你好", "！"),
        ),
        Family(
            "chatglm3",
            "chatglm",
            "[gMASK]sop" + _each("<|{{ m.role }}|>\n ") + _gen("<|assistant|>"),
            after="<|assistant|>",
            stop="<|user|>",
            answer=("你好", " world"),
            specials=GLM_SPECIALS,
            rope_dims=HEAD_DIM // 2,
        ),
        Family(
            "glm4",
            "glm4",
            "[gMASK]<sop>" + _each("<|{{ m.role }}|>\n") + _gen("<|assistant|>\n"),
            after="\n",
            stop="<|user|>",
            answer=("Hello", "！"),
            specials=GLM_SPECIALS,
            rope_dims=HEAD_DIM // 2,
        ),
        Family(
            "baichuan2",
            "baichuan",
            _each(BAICHUAN_ROLE) + _gen("<reserved_107>"),
            after="<reserved_107>",
            stop="</s>",
            answer=("你好", "!"),
            specials=("<reserved_106>", "<reserved_107>", "<s>"),
            bos="<s>",
        ),
        Family(
            "ernie4_5",
            "ernie4_5",
            "<|begin_of_sentence|>" + _each(ERNIE_ROLE, "\n") + _gen("Assistant: "),
            after=" ",
            stop="<|end_of_sentence|>",
            answer=("Hello", "，", "你好"),
            specials=("<|begin_of_sentence|>",),
            bos="<|begin_of_sentence|>",
        ),
    ]
}
