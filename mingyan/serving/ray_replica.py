"""One engine replica as a Ray actor: mingyan's own llama.cpp engine in a process Ray places.

`EngineReplica` is a plain class; `mingyan.serving.ray_engine` makes it a Ray actor
(`ray.remote(EngineReplica)`), so importing this module needs no Ray. It is an async actor: its
methods run on the actor's event loop, which is the loop the engine's decode thread hands each
step's events to.

`generate` is a streaming generator: each item it yields is a list of what the engine produced
since the last item (a step's text, or several steps' when the caller reads slower than the engine
decodes), so one Ray object crosses per step or more, never one per token. Errors travel as
`WireError` values, never as pickled exceptions (some of mingyan's cannot be rebuilt from their
message alone).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from mingyan.engine.base import EngineStats, EventStream, GenerationRequest, ModelInfo, TokenEvent
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.errors import (
    EngineBusyError,
    EngineClosing,
    EngineError,
    InvalidRequestError,
    MingyanError,
    ModelError,
)


@dataclass(frozen=True)
class ReplicaSpec:
    """What a replica loads: the model by name, from its node's own registry (the same file:
    its sha256 is checked), with the engine settings of the server."""

    model: str
    sha256: str
    data_dir: Path
    cache_dir: Path
    hf_endpoint: str
    config: EngineConfig
    index: int = 0


@dataclass(frozen=True)
class ReplicaInfo:
    """What the API process needs to know of a replica once it is up."""

    model: ModelInfo
    template_source: str | None  # the chat template (rebuilt in the API process), None when none
    bos_token: str
    eos_token: str
    n_slots: int
    max_queue: int
    pid: int
    node_id: str
    node_ip: str


@dataclass(frozen=True)
class WireError:
    """An engine error on its way to the API process (rebuilt there by `error()`)."""

    kind: str  # "busy", "closing", "invalid" or "engine"
    message: str
    param: str | None = None
    code: str | None = None
    retry_after_s: float = 1.0

    @classmethod
    def of(cls, exc: MingyanError) -> WireError:
        if isinstance(exc, EngineBusyError):
            return cls("busy", str(exc), retry_after_s=exc.retry_after_s)
        if isinstance(exc, EngineClosing):
            return cls("closing", str(exc))
        if isinstance(exc, InvalidRequestError):
            return cls("invalid", str(exc), param=exc.param, code=exc.code)
        return cls("engine", str(exc))

    def error(self) -> MingyanError:
        if self.kind == "busy":
            return EngineBusyError(self.message, retry_after_s=self.retry_after_s)
        if self.kind == "closing":
            return EngineClosing(self.message)
        if self.kind == "invalid":
            return InvalidRequestError(self.message, param=self.param, code=self.code)
        return EngineError(self.message)


Item = TokenEvent | WireError


class EngineReplica:
    """A LlamaCppEngine in a Ray actor (see the module doc)."""

    def __init__(self, spec: ReplicaSpec) -> None:
        from mingyan.engine.llamacpp.engine import LlamaCppEngine
        from mingyan.models.registry import ModelRegistry

        entry = ModelRegistry(spec.data_dir, spec.cache_dir, hf_endpoint=spec.hf_endpoint, progress=False).resolve(
            spec.model
        )
        if spec.sha256 and entry.sha256 != spec.sha256:
            raise ModelError(f"model {spec.model} on this node is not the file the server has (sha256 differs)")
        config = spec.config
        if config.cache_dir is not None:  # replicas on one machine keep their saved states apart
            config = replace(config, cache_dir=config.cache_dir / f"replica-{spec.index}")
        self._engine = LlamaCppEngine(entry.path, name=entry.name, sha256=entry.sha256, config=config)
        self._running: dict[str, asyncio.Task[None]] = {}

    def describe(self) -> ReplicaInfo:
        import ray

        template = self._engine.chat_template
        context = ray.get_runtime_context()
        return ReplicaInfo(
            model=self._engine.info,
            template_source=template.source if template is not None else None,
            bos_token=template.bos_token if template is not None else "",
            eos_token=template.eos_token if template is not None else "",
            n_slots=self._engine.config.n_slots,
            max_queue=self._engine.config.max_queue,
            pid=os.getpid(),
            node_id=context.get_node_id(),
            node_ip=ray.util.get_node_ip_address(),
        )

    def tokenize(self, text: str, special: bool, bos: bool) -> list[int]:
        return self._engine.tokenize(text, special=special, bos=bos)

    def has_special_text(self, text: str) -> bool:
        return self._engine.has_special_text(text)

    def stats(self) -> EngineStats:
        return self._engine.stats()

    async def forget(self, scope: str, label: str | None) -> None:
        await asyncio.to_thread(self._engine.forget, scope, label)

    async def close(self) -> None:
        """Stop the engine (its KV states saved to disk); the actor is killed after."""
        for task in self._running.values():
            task.cancel()
        await asyncio.to_thread(self._engine.close)

    def cancel(self, request_id: str) -> None:
        """The API side stopped reading `request_id`: cancel its generation."""
        task = self._running.get(request_id)
        if task is not None:
            task.cancel()

    async def generate(self, request_id: str, request: GenerationRequest) -> AsyncIterator[list[Item]]:
        """The events of `request`, a list per Ray object (see the module doc)."""
        try:
            stream = self._engine.generate(request)
        except MingyanError as exc:
            yield [WireError.of(exc)]
            return
        queue: asyncio.Queue[Item | None] = asyncio.Queue()  # None: the end
        task = asyncio.create_task(_pump(stream, queue))
        self._running[request_id] = task
        try:
            ended = False
            while not ended:
                batch = [await queue.get()]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                ended = batch[-1] is None
                items = [item for item in batch if item is not None]
                if items:
                    yield items
        finally:
            self._running.pop(request_id, None)
            task.cancel()


async def _pump(stream: EventStream, queue: asyncio.Queue[Item | None]) -> None:
    """Move the engine's events into `queue`, then None, the end (also when cancelled)."""
    try:
        async for event in stream:
            queue.put_nowait(event)
    except MingyanError as exc:
        queue.put_nowait(WireError.of(exc))
    finally:
        await stream.aclose()
        queue.put_nowait(None)
