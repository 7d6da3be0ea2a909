"""Which replica serves a request: conversation affinity first, then the least busy.

A replica keeps the KV state of the conversations it served (in its slots, its RAM and disk
cache), so a follow-up turn sent back to it reuses that state instead of evaluating the whole
history again. `Affinity` remembers, per owner (`cache_scope`), which replica last served each
conversation (`cache_label`) and the last few prompts it was sent; `choose` then keeps a request on
that replica unless it is dead, full, or busier than the least busy one by more than `slack`
requests, and otherwise sends it to the replica with the fewest requests in flight (ties: the one
sent fewest requests so far). A prompt follows an earlier one of its owner when it continues it:
it holds the whole earlier prompt but for its last few tokens (a follow-up turn sent through /v1
does; a new conversation that shares only a system prompt with an earlier one does not).

Nothing here crosses owners: a prompt prefix is matched only against the same scope's prompts,
so where one user's request goes says nothing about another user's prompts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from mingyan.engine.base import GenerationRequest

MIN_PREFIX = 16  # a shared prompt prefix shorter than this is not worth following
TAIL_SLACK = 8  # a follow-up may differ from the earlier prompt in its last few tokens (the template's)
PROMPTS_PER_SCOPE = 16
MAX_CONVERSATIONS = 100_000
MAX_SCOPES = 10_000


@dataclass(frozen=True)
class ReplicaLoad:
    index: int
    alive: bool
    in_flight: int  # requests sent to it and not yet ended (generating or waiting in its queue)
    capacity: int  # most requests it takes at once (its slots plus its queue)
    served: int  # requests sent to it since start


def choose(loads: Sequence[ReplicaLoad], preferred: int | None, slack: int) -> int | None:
    """The replica for a request (None: every replica is dead or full)."""
    open_ = [r for r in loads if r.alive and r.in_flight < r.capacity]
    if not open_:
        return None
    least = min(open_, key=lambda r: (r.in_flight, r.served, r.index))
    for replica in open_:
        if replica.index == preferred and replica.in_flight <= least.in_flight + slack:
            return replica.index
    return least.index


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Affinity:
    """The replica that last served each conversation and recent prompt, per owner. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._labels: OrderedDict[tuple[str, str], int] = OrderedDict()
        # per scope: (prompt, replica, conversation label) of its latest requests
        self._prompts: OrderedDict[str, deque[tuple[tuple[int, ...], int, str]]] = OrderedDict()

    def preferred(self, request: GenerationRequest) -> int | None:
        with self._lock:
            return self._preferred(request)

    def _preferred(self, request: GenerationRequest) -> int | None:
        scope = request.cache_scope
        if request.cache_label:
            replica = self._labels.get((scope, request.cache_label))
            if replica is not None:
                return replica
        best, best_len = None, MIN_PREFIX - 1
        for tokens, replica, _ in reversed(self._prompts.get(scope, ())):
            shared = common_prefix(tokens, request.prompt_tokens)
            if shared > best_len and shared >= len(tokens) - TAIL_SLACK:  # continues it
                best, best_len = replica, shared
        return best

    def record(self, request: GenerationRequest, replica: int) -> None:
        with self._lock:
            self._record(request, replica)

    def _record(self, request: GenerationRequest, replica: int) -> None:
        scope = request.cache_scope
        if request.cache_label:
            key = (scope, request.cache_label)
            self._labels[key] = replica
            self._labels.move_to_end(key)
            if len(self._labels) > MAX_CONVERSATIONS:
                self._labels.popitem(last=False)
        prompts = self._prompts.setdefault(scope, deque(maxlen=PROMPTS_PER_SCOPE))
        self._prompts.move_to_end(scope)
        prompts.append((request.prompt_tokens, replica, request.cache_label))
        if len(self._prompts) > MAX_SCOPES:
            self._prompts.popitem(last=False)

    def forget(self, scope: str, label: str | None = None) -> None:
        """Drop what is remembered of `scope` (or of its conversation `label`)."""
        with self._lock:
            self._forget(scope, label)

    def _forget(self, scope: str, label: str | None) -> None:
        for key in [k for k in self._labels if k[0] == scope and (label is None or k[1] == label)]:
            del self._labels[key]
        if label is None:
            self._prompts.pop(scope, None)
        elif scope in self._prompts:
            kept = (p for p in self._prompts[scope] if p[2] != label)
            self._prompts[scope] = deque(kept, maxlen=PROMPTS_PER_SCOPE)

    def drop_replica(self, replica: int) -> None:
        """A replica died: its conversations go wherever there is room next time."""
        with self._lock:
            self._drop(replica)

    def _drop(self, replica: int) -> None:
        for key in [k for k, r in self._labels.items() if r == replica]:
            del self._labels[key]
        for scope, prompts in self._prompts.items():
            self._prompts[scope] = deque((p for p in prompts if p[1] != replica), maxlen=PROMPTS_PER_SCOPE)
