"""Chat templates from GGUF metadata, rendered in a sandboxed Jinja environment.

GGUF files carry their chat template as Jinja source (`tokenizer.chat_template`). That
source comes from whoever converted the model, so it is untrusted: rendering it in a
plain Jinja environment let a crafted model file run code (CVE-2024-34359). Here it
runs in Jinja's immutable sandbox, which refuses access to Python internals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mingyan.errors import TemplateError

MAX_RENDERED_CHARS = 8 * 1024 * 1024


def _raise_exception(message: str) -> None:
    raise TemplateError(f"chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(value: object, indent: int | None = None, **_: object) -> str:
    # Hugging Face renders tojson without ASCII escaping so Chinese stays readable.
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.loopcontrols"],
        undefined=jinja2.Undefined,
        autoescape=False,
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


class ChatTemplate:
    """A compiled chat template plus the special tokens it may refer to."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"chat template does not compile: {exc}") from exc

    def render(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """The prompt text for `messages` (dicts with `role` and `content`); `tools`, when
        given, is passed as Hugging Face templates expect (a list of OpenAI tool dicts)."""
        extra = {"tools": [dict(t) for t in tools]} if tools else {}
        try:
            text = self._template.render(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                **extra,
            )
        except TemplateError:
            raise
        except SecurityError as exc:
            raise TemplateError(f"chat template tried an unsafe operation: {exc}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"chat template failed to render: {exc}") from exc
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            raise TemplateError(f"chat template failed to render: {exc}") from exc
        if len(text) > MAX_RENDERED_CHARS:
            raise TemplateError("chat template produced an implausibly large prompt")
        return text
