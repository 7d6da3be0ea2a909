"""The llama.cpp engine's counters, and the EngineStats read from them."""

from __future__ import annotations

from dataclasses import dataclass

from mingyan.engine.base import EngineStats


@dataclass
class Counters:
    """Written only by the decode thread; read (racily but harmlessly) by anyone."""

    requests: int = 0
    cancelled: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    prefill_tokens: int = 0
    errors: int = 0
    last_error: str | None = None
    busy_s_ewma: float = 5.0
    drafted_tokens: int = 0  # by any source (prompt lookup, draft model)
    accepted_tokens: int = 0
    model_drafted_tokens: int = 0  # of those, by the draft model
    model_accepted_tokens: int = 0

    def record_draft(self, drafted: int, accepted: int, by_model: bool) -> None:
        self.drafted_tokens += drafted
        self.accepted_tokens += accepted
        if by_model:
            self.model_drafted_tokens += drafted
            self.model_accepted_tokens += accepted

    def stats(self, active: int, queued: int) -> EngineStats:
        return EngineStats(
            active=active,
            queued=queued,
            requests_total=self.requests,
            cancelled_total=self.cancelled,
            prompt_tokens_total=self.prompt_tokens,
            cached_tokens_total=self.cached_tokens,
            generated_tokens_total=self.generated_tokens,
            prefill_tokens_total=self.prefill_tokens,
            errors_total=self.errors,
            last_error=self.last_error,
            drafted_tokens_total=self.drafted_tokens,
            accepted_tokens_total=self.accepted_tokens,
            model_drafted_tokens_total=self.model_drafted_tokens,
            model_accepted_tokens_total=self.model_accepted_tokens,
        )
