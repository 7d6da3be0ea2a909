"""Token log-probabilities from the engine in OpenAI's two shapes: chat and legacy completions."""

from __future__ import annotations

from collections.abc import Sequence

from mingyan.api.schemas import (
    ChatLogprobs,
    CompletionLogprobs,
    TokenLogprobOut,
    TopLogprobOut,
)
from mingyan.engine.base import TokenLogprob, TopLogprob


def _top(entry: TopLogprob) -> TopLogprobOut:
    return TopLogprobOut(token=entry.token, logprob=entry.logprob, bytes=list(entry.bytes))


def chat_logprobs(entries: Sequence[TokenLogprob]) -> ChatLogprobs:
    """`choices[].logprobs` of /v1/chat/completions: one item per token, with its top alternatives."""
    return ChatLogprobs(
        content=[
            TokenLogprobOut(
                token=e.token, logprob=e.logprob, bytes=list(e.bytes), top_logprobs=[_top(t) for t in e.top]
            )
            for e in entries
        ]
    )


def completion_logprobs(entries: Sequence[TokenLogprob], offset: int = 0) -> CompletionLogprobs:
    """`choices[].logprobs` of /v1/completions; `text_offset` counts characters of the token texts
    from `offset` (where this piece starts in the completion)."""
    offsets = []
    for entry in entries:
        offsets.append(offset)
        offset += len(entry.token)
    return CompletionLogprobs(
        tokens=[e.token for e in entries],
        token_logprobs=[e.logprob for e in entries],
        top_logprobs=[{t.token: t.logprob for t in e.top} for e in entries],
        text_offset=offsets,
    )
