"""What a conversation's reply sees: the system prompt and as many recent turns as fit.

Policy (documented in docs/conversations.md): the system prompt and the newest turn are always
kept; when the whole path does not fit the model's window together with room for the reply,
the oldest turns are left out, whole, one at a time, and the reply records how many. A turn is
a user message and the replies that follow it. If even the newest turn alone does not fit,
the request is refused (ContextLengthError) before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mingyan.chat.service import MAX_MESSAGES, ChatService
from mingyan.errors import ContextLengthError

DEFAULT_REPLY_RESERVE = 1024  # room kept for the reply when max_tokens is not set (capped at n_ctx/4)


@dataclass(frozen=True)
class Context:
    messages: list[dict[str, str]]  # what the template renders
    tokens: list[int]
    omitted_turns: int


def reply_reserve(n_ctx: int, max_tokens: int | None) -> int:
    return max_tokens if max_tokens else min(DEFAULT_REPLY_RESERVE, n_ctx // 4)


def split_turns(history: Sequence[Mapping[str, str]]) -> list[list[dict[str, str]]]:
    """Group messages into turns, each starting at a user message (leading non-user ones join the first)."""
    turns: list[list[dict[str, str]]] = []
    for message in history:
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append({"role": message["role"], "content": message["content"]})
    return turns


async def fit_context(
    chat: ChatService,
    system_prompt: str | None,
    history: Sequence[Mapping[str, str]],
    max_tokens: int | None,
    *,
    user: str = "",
) -> Context:
    """The largest suffix of whole turns of `history` that fits with the reply's reserve."""
    n_ctx = chat.engine.info.n_ctx
    budget = n_ctx - reply_reserve(n_ctx, max_tokens)
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns = split_turns(history)
    first = _first_that_may_fit(chat, head, turns)

    async def render(dropped: int) -> list[int]:
        return await chat.prompt_tokens(_messages(head, turns, dropped), user=user)

    # Leaving out more turns never makes the prompt longer: binary search for the fewest dropped.
    tokens = await render(first)
    if len(tokens) <= budget:
        return Context(_messages(head, turns, first), tokens, first)
    low, high = first + 1, len(turns) - 1  # the newest turn always stays
    best: tuple[int, list[int]] | None = None
    while low <= high:
        middle = (low + high) // 2
        candidate = await render(middle)
        if len(candidate) <= budget:
            best, high = (middle, candidate), middle - 1
        else:
            low = middle + 1
    if best is None:
        newest = await render(len(turns) - 1)
        raise ContextLengthError(len(newest), max_tokens or reply_reserve(n_ctx, max_tokens), n_ctx)
    dropped, tokens = best
    return Context(_messages(head, turns, dropped), tokens, dropped)


def _first_that_may_fit(chat: ChatService, head: list[dict[str, str]], turns: list[list[dict[str, str]]]) -> int:
    """How many of the oldest turns to leave out before rendering anything: those beyond the
    message and character bounds of one request (they could never fit)."""
    count = len(head) + sum(len(turn) for turn in turns)
    chars = sum(len(m["content"]) for m in head) + sum(len(m["content"]) for turn in turns for m in turn)
    dropped = 0
    while dropped < len(turns) - 1 and (count > MAX_MESSAGES or chars > chat.max_prompt_chars):
        count -= len(turns[dropped])
        chars -= sum(len(m["content"]) for m in turns[dropped])
        dropped += 1
    return dropped


def _messages(head: list[dict[str, str]], turns: list[list[dict[str, str]]], dropped: int) -> list[dict[str, str]]:
    return head + [m for turn in turns[dropped:] for m in turn]
