"""Model families: the canonical chat template and stop tokens of each, and how to spot one.

Many GGUF conversions carry no chat template, or a wrong one. The server then falls back on
the template the model's authors published for its family. `detect_family` decides the
family from GGUF metadata (`general.architecture`, `general.name`) and whatever template the
file does carry; it answers None rather than guess.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mingyan.formats import family_templates as templates


@dataclass(frozen=True)
class Family:
    """A model family's chat format, as its authors publish it."""

    name: str
    architectures: tuple[str, ...]  # GGUF general.architecture values
    template: str  # canonical Jinja source
    stop_tokens: tuple[str, ...]  # token texts that end an assistant turn
    source: str  # where template and stop tokens come from


_FAMILIES: tuple[Family, ...] = (
    Family(
        name="chatglm3",
        architectures=("chatglm",),
        template=templates.CHATGLM3,
        stop_tokens=("</s>", "<|user|>", "<|observation|>"),
        source=(
            "THUDM/chatglm3-6b tokenizer_config.json chat_template (also llama.cpp "
            "tests/test-chat-template.cpp, ChatGLM3); stops: eos </s> plus <|user|> and "
            "<|observation|>, as ChatGLM3's modeling_chatglm.py chat() passes to generate()"
        ),
    ),
    Family(
        name="glm4",
        architectures=("glm4", "chatglm"),
        template=templates.GLM4,
        stop_tokens=("<|endoftext|>", "<|user|>", "<|observation|>"),
        source=(
            "THUDM/glm-4-9b-chat tokenizer_config.json chat_template as in llama.cpp "
            "tests/test-chat-template.cpp (ChatGLM4), tool branch dropped; stops: "
            "generation_config.json eos_token_id [151329, 151336, 151338]"
        ),
    ),
    Family(
        name="baichuan2",
        architectures=("baichuan",),
        template=templates.BAICHUAN2,
        stop_tokens=("</s>", "<reserved_106>"),
        source=(
            "vllm-project/vllm examples/template_baichuan.jinja, matching build_chat_input() in "
            "baichuan-inc/Baichuan2-7B-Chat generation_utils.py (user_token_id 195 "
            "<reserved_106>, assistant_token_id 196 <reserved_107>); stops: eos </s> (id 2) "
            "and the user token"
        ),
    ),
    Family(
        name="ernie4_5",
        architectures=("ernie4_5", "ernie4_5-moe"),
        template=templates.ERNIE4_5,
        stop_tokens=("<|end_of_sentence|>", "</s>"),
        source=(
            "baidu/ERNIE-4.5-0.3B-PT chat template, as DEFAULT_CHAT_TEMPLATE in "
            "huggingface/transformers models/ernie4_5/tokenization_ernie4_5.py; stops: the "
            "sep_token <|end_of_sentence|> that closes each assistant turn, and eos </s>"
        ),
    ),
    Family(
        name="qwen2",
        architectures=("qwen2",),
        template=templates.QWEN2,
        stop_tokens=("<|im_end|>", "<|endoftext|>"),
        source=(
            "Qwen/Qwen2.5-7B-Instruct tokenizer_config.json chat_template (llama.cpp "
            "models/templates/Qwen-Qwen2.5-7B-Instruct.jinja); stops: generation_config.json "
            "eos_token_id [151645, 151643]"
        ),
    ),
    Family(
        name="llama3",
        architectures=("llama",),
        template=templates.LLAMA3,
        stop_tokens=("<|eot_id|>", "<|end_of_text|>"),
        source=(
            "meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json chat_template (llama.cpp "
            "tests/test-chat-template.cpp, Llama-3); stops: generation_config.json "
            "eos_token_id [128001, 128009]"
        ),
    ),
)

# Evidence in general.name, tested on the lower-cased name.
_NAME_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("chatglm3", re.compile(r"chatglm[-_ ]?3")),
    ("glm4", re.compile(r"glm[-_ ]?4")),
    ("llama3", re.compile(r"llama[-_ ]?3(?!\d)")),
)

# Evidence in a chat template's source: markers only one family's format has.
_TEMPLATE_HINTS: tuple[tuple[str, str], ...] = (
    ("glm4", "[gMASK]<sop>"),
    ("chatglm3", "[gMASK]sop"),
    ("llama3", "<|start_header_id|>"),
)


# Jinja tag delimiters with the whitespace (and whitespace-control dash) next to them.
_TAG_OPEN = re.compile(r"\s*(\{[%{#])-?\s*")
_TAG_CLOSE = re.compile(r"\s*-?([%}#]\})\s*")


def families() -> tuple[Family, ...]:
    """Every family mingyan knows, in a fixed order."""
    return _FAMILIES


def family_by_name(name: str) -> Family:
    """The family called `name`; ValueError if there is none."""
    for family in _FAMILIES:
        if family.name == name:
            return family
    known = ", ".join(f.name for f in _FAMILIES)
    raise ValueError(f"unknown model family {name!r} (known: {known})")


def detect_family(architecture: str | None, model_name: str | None, template: str | None) -> Family | None:
    """The family of a GGUF model, or None when the metadata does not say for sure.

    The architecture decides when only one family uses it. Otherwise (`chatglm` is ChatGLM3
    or GLM-4; `llama` is Llama 3 or any other llama-shaped model) a marker in the file's
    template decides, and failing that its general.name; a llama-arch model whose template
    has no Llama 3 header tokens is not called Llama 3 whatever its name says.
    """
    arch = (architecture or "").strip().lower()
    candidates = [f for f in _FAMILIES if arch in f.architectures]
    if not candidates:
        return None
    if len(candidates) == 1 and arch != "llama":
        return candidates[0]
    names = {f.name for f in candidates}
    if template and template.strip():
        found = _template_evidence(template, names)
        if found is not None or arch == "llama":
            return found
    return _name_evidence(model_name, names)


def _template_evidence(template: str, names: set[str]) -> Family | None:
    for family_name, marker in _TEMPLATE_HINTS:
        if family_name in names and marker in template:
            return family_by_name(family_name)
    return None


def _name_evidence(model_name: str | None, names: set[str]) -> Family | None:
    lowered = (model_name or "").lower()
    for family_name, pattern in _NAME_HINTS:
        if family_name in names and pattern.search(lowered):
            return family_by_name(family_name)
    return None


def template_fingerprint(template: str) -> str:
    """A short id of a template's source that ignores how it is laid out.

    Whitespace around Jinja tags and their whitespace-control dashes is dropped and other
    runs of whitespace count as one space, so a re-indented copy keeps its fingerprint.
    """
    text = _TAG_OPEN.sub(r"\1", template)
    text = _TAG_CLOSE.sub(r"\1", text)
    normalized = " ".join(text.split())
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:16]
