"""Which chat template and stop tokens a model gets: its own, or its family's.

A GGUF that carries `tokenizer.chat_template` uses it. One that carries none gets the
canonical template of its family (recognized from its metadata), with a logged notice.
An unknown family without a template is refused at load: guessing a format produces
garbage that users cannot diagnose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mingyan.errors import ModelError
from mingyan.formats.families import Family, detect_family

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatFormat:
    template: str
    template_source: str  # "gguf" or "family <name>"
    family: Family | None
    stop_tokens: tuple[str, ...]


def resolve_chat_format(
    architecture: str | None, model_name: str | None, gguf_template: str | None, *, label: str
) -> ChatFormat:
    family = detect_family(architecture, model_name, gguf_template or None)
    stops = family.stop_tokens if family else ()
    if gguf_template:
        return ChatFormat(gguf_template, "gguf", family, stops)
    if family is not None:
        log.warning(
            "%s carries no chat template; using the %s family's canonical template (%s)",
            label,
            family.name,
            family.source.split(";")[0],
        )
        return ChatFormat(family.template, f"family {family.name}", family, stops)
    raise ModelError(
        f"{label} has no chat template and its architecture '{architecture or 'unknown'}' "
        "is not a known model family; use a GGUF that carries tokenizer.chat_template"
    )


def describe(architecture: str | None, model_name: str | None, gguf_template: str | None) -> dict[str, object]:
    """What `mingyan models info` shows about the chat format."""
    try:
        fmt = resolve_chat_format(architecture, model_name, gguf_template, label="model")
    except ModelError:
        return {"family": None, "template_source": "none (chat refused: unknown family)", "stop_tokens": ""}
    return {
        "family": fmt.family.name if fmt.family else None,
        "template_source": fmt.template_source,
        "stop_tokens": " ".join(fmt.stop_tokens) or "(the model's end-of-generation tokens)",
    }
