"""Errors a user can act on. Each carries a one-line message meant for people."""

from __future__ import annotations


class MingyanError(Exception):
    """Base class: str(error) is a complete, readable, one-line explanation."""


class ModelError(MingyanError):
    """A model cannot be found, assembled, verified, downloaded or loaded."""


class TemplateError(MingyanError):
    """A chat template is unusable or refused to render."""


class InvalidRequestError(MingyanError):
    """A request that cannot be served as asked; `param` names the offending field."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class ContextLengthError(InvalidRequestError):
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
        InvalidRequestError.__init__(
            self,
            f"This model's maximum context length is {n_ctx} tokens. However, {detail}. "
            "Please shorten the prompt or lower max_tokens.",
            param="messages",
            code="context_length_exceeded",
        )


class EngineError(MingyanError):
    """The engine could not run a request (empty prompt, native failure)."""


class EngineClosing(EngineError):
    """The engine is shutting down: the request was not (or no longer) served; retry on a server
    that is up (answered 503 with Retry-After)."""

    retry_after_s = 5.0


class EngineLost(EngineError):
    """The process running the engine (a Ray replica) went away mid-reply: the reply so far is kept,
    saved `interrupted`; a new request goes to a replica that is up (503 with Retry-After before
    any token)."""

    retry_after_s = 1.0


class UpstreamUnavailable(MingyanError):
    """The server that runs a model (an upstream engine) cannot be reached: 503 for that model only."""

    retry_after_s = 5.0


class EngineBusyError(MingyanError):
    """The engine's queue is full; the client should retry after `retry_after_s`."""

    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConflictError(MingyanError):
    """The request conflicts with the object's current state (for example, a reply still running)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class AccessRevoked(MingyanError):
    """The caller's account was disabled or deleted, or their key revoked, while a request ran."""
