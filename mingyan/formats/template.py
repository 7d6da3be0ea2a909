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

from mingyan.errors import TemplateError
from mingyan.formats.template_limits import (
    BoundedSandbox,
    RenderBudgetExceeded,
    RenderLimitError,
    Watchdog,
)

MAX_RENDERED_CHARS = 8 * 1024 * 1024
RENDER_BUDGET_S = 2.0  # far above any real template (milliseconds), far below a stuck request
SAMPLE = (  # rendered once at load: a template that cannot render this within its limits is refused
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi!"},
    {"role": "user", "content": "How are you?"},
)


class TemplateLimitError(TemplateError):
    """A template went past its time, size or recursion limits."""


def _raise_exception(message: str) -> None:
    raise TemplateError(f"chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(value: object, indent: int | None = None, **_: object) -> str:
    # Hugging Face renders tojson without ASCII escaping so Chinese stays readable.
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _environment() -> BoundedSandbox:
    env = BoundedSandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.loopcontrols"],
        undefined=jinja2.Undefined,
        autoescape=False,
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.bound_filters()
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
        except RecursionError as exc:
            raise TemplateError("chat template does not compile: it nests too deeply") from exc
        try:
            self.render(SAMPLE)
        except TemplateLimitError as exc:
            raise TemplateError(f"chat template refused at load: {exc}") from exc
        except TemplateError:
            pass  # refusing this sample (e.g. a role rule) is the template's right

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """The prompt text for `messages` (dicts with `role` and `content`), within the limits:
        `RENDER_BUDGET_S` of time, `MAX_RENDERED_CHARS` of output (else TemplateLimitError).
        `tools`, when given, is passed as Hugging Face templates expect (a list of OpenAI tool dicts)."""
        extra = {"tools": [dict(t) for t in tools]} if tools else {}
        try:
            with Watchdog(RENDER_BUDGET_S):
                return self._render(messages, add_generation_prompt, extra)
        except RenderBudgetExceeded as exc:
            raise TemplateLimitError(f"chat template ran past its time budget of {RENDER_BUDGET_S:g} s") from exc
        except RenderLimitError as exc:
            raise TemplateLimitError(f"chat template went past a size limit: {exc}") from exc
        except (RecursionError, MemoryError) as exc:
            raise TemplateLimitError(f"chat template went past its limits ({type(exc).__name__})") from exc

    def _render(
        self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool, extra: Mapping[str, Any]
    ) -> str:
        pieces: list[str] = []
        size = 0
        try:
            for piece in self._template.generate(
                messages=[dict(m) for m in messages],
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                **extra,
            ):
                size += len(piece)
                if size > MAX_RENDERED_CHARS:
                    raise TemplateLimitError("chat template produced an implausibly large prompt")
                pieces.append(piece)
        except TemplateError:
            raise
        except SecurityError as exc:
            raise TemplateError(f"chat template tried an unsafe operation: {exc}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"chat template failed to render: {exc}") from exc
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            raise TemplateError(f"chat template failed to render: {exc}") from exc
        return "".join(pieces)
