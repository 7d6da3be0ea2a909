"""Errors a user can act on. Each carries a one-line message meant for people."""

from __future__ import annotations


class MingyanError(Exception):
    """Base class: str(error) is a complete, readable, one-line explanation."""


class ModelError(MingyanError):
    """A model cannot be found, assembled, verified, downloaded or loaded."""


class TemplateError(MingyanError):
    """A chat template is unusable or refused to render."""


class ContextLengthError(MingyanError):
    """A prompt (plus the requested completion) does not fit the model's context."""

    def __init__(self, prompt_tokens: int, max_tokens: int | None, n_ctx: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.n_ctx = n_ctx
        if max_tokens:
            detail = (
                f"you requested {prompt_tokens + max_tokens} tokens "
                f"({prompt_tokens} in the prompt, {max_tokens} for the completion)"
            )
        else:
            detail = f"your prompt has {prompt_tokens} tokens, leaving no room for a completion"
        super().__init__(
            f"This model's maximum context length is {n_ctx} tokens. However, {detail}. "
            "Please shorten the prompt or lower max_tokens."
        )


class EngineError(MingyanError):
    """The engine could not run a request (empty prompt, native failure)."""
