"""The engine in this process versus the same engine as one Ray replica, side by side in one run.

Both run the same model, thread count and settings; the requests alternate between them (one
engine idles while the other works), each with a fresh prompt of its own owner, so no KV state
is reused. Prints the median time to first token and decode tokens/s of each, and the ratios the
issue sets as targets (Ray decode >= 90% of in-process, Ray TTFT <= 1.2x). A third engine moves
the tokens by polling (an actor call per batch of events) instead of mingyan's streaming
generator, to show which costs less.

    python bench/ray_vs_local.py [--model smollm2-135m-instruct] [--tokens 128] [--reps 5] [--threads N]
                        [--ray local|auto|HOST:PORT] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/ray_vs_local.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mingyan.config import Settings  # noqa: E402
from mingyan.engine.base import Engine, GenerationRequest, SamplingParams  # noqa: E402
from mingyan.serving.ray_replica import EngineReplica, ReplicaSpec  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle. Describe the sea in detail."


async def one(engine: Engine, tokens: int) -> tuple[float, float]:
    """(seconds to the first token, decode tokens/s after it) of one fresh request."""
    nonce = uuid.uuid4().hex[:8]
    template = engine.chat_template
    assert template is not None
    text = template.render([{"role": "user", "content": f"[{nonce}] {PROMPT}"}])
    prompt = tuple(engine.tokenize(text))
    sampling = SamplingParams(temperature=0.0, max_tokens=tokens)
    request = GenerationRequest(prompt_tokens=prompt, sampling=sampling, user=nonce, cache_scope=nonce)
    started = time.perf_counter()
    first = end = None
    n = 0
    stream = engine.generate(request)
    try:
        async for event in stream:
            if event.text and first is None:
                first = time.perf_counter()
            if event.usage is not None:
                n = event.usage.completion_tokens
        end = time.perf_counter()
    finally:
        await stream.aclose()
    assert first is not None and n > 1, "no tokens came back"
    return first - started, (n - 1) / (end - first)


class PollingReplica(EngineReplica):
    """The other way to move tokens (measured against the streaming generator mingyan uses): the
    API side calls `poll` in a loop; each call waits for at least one event and takes all there are."""

    def __init__(self, spec: ReplicaSpec) -> None:
        super().__init__(spec)
        self._queues: dict[str, asyncio.Queue] = {}

    async def start(self, request_id: str, request: GenerationRequest) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        self._queues[request_id] = queue

        async def pump() -> None:
            async for items in self.generate(request_id, request):
                queue.put_nowait(items)
            queue.put_nowait(None)

        self._pump = asyncio.create_task(pump())

    async def poll(self, request_id: str) -> list | None:
        queue = self._queues[request_id]
        batch = [await queue.get()]
        while not queue.empty():
            batch.append(queue.get_nowait())
        if batch[-1] is None:
            del self._queues[request_id]
            batch.pop()
            return [item for items in batch for item in items] or None
        return [item for items in batch for item in items]


class PollingEngine:
    """Just enough of the Engine protocol for `one()`, over a PollingReplica."""

    def __init__(self, handle, tokenizer: Engine) -> None:
        self.handle, self.tokenizer = handle, tokenizer
        self.chat_template = tokenizer.chat_template

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer.tokenize(text)

    def generate(self, request: GenerationRequest):
        return self._events(request)

    async def _events(self, request: GenerationRequest):
        request_id = uuid.uuid4().hex
        await self.handle.start.remote(request_id, request)
        while (items := await self.handle.poll.remote(request_id)) is not None:
            for item in items:
                yield item
                if item.finish_reason is not None:
                    return

    def close(self) -> None:
        import ray

        ray.kill(self.handle)


def open_engines(args: argparse.Namespace) -> dict[str, Engine]:
    import ray

    from mingyan.bootstrap import engine_config, open_engine, open_ray_replicas, open_registry

    settings = Settings(model=args.model, n_threads=args.threads, n_slots=1, n_ctx=2048, speculative=False)
    local = open_engine(settings, progress=False)
    config = engine_config(settings)
    print(f"engine: {args.model}, {config.n_threads} threads, 1 slot, no speculation", file=sys.stderr)
    streaming = open_ray_replicas(settings.model_copy(update={"ray": args.ray, "ray_replicas": 1}), progress=False)
    entry = open_registry(settings, progress=False).resolve(settings.model)
    spec = ReplicaSpec(entry.name, entry.sha256, settings.data_dir, settings.cache_dir, settings.hf_endpoint, config)
    handle = ray.remote(PollingReplica).options(num_cpus=1).remote(spec)
    ray.get(handle.describe.remote())
    polling = PollingEngine(handle, streaming)
    return {"in-process": local, "ray": streaming, "ray-polling": polling}  # type: ignore[dict-item]


async def measure(engines: dict[str, Engine], tokens: int, reps: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in engines}
    for engine in engines.values():  # warm-up: first calls pay one-time costs
        await one(engine, 8)
    for _ in range(reps):
        for name, engine in engines.items():
            results[name].append(await one(engine, tokens))
    return results


def report(results: dict[str, list[tuple[float, float]]], args: argparse.Namespace) -> str:
    ttft = {name: statistics.median(r[0] for r in rs) for name, rs in results.items()}
    rate = {name: statistics.median(r[1] for r in rs) for name, rs in results.items()}
    lines = [
        f"model {args.model}, {args.tokens} tokens, {args.reps} repetitions, {args.threads} threads, "
        f"{os.cpu_count()} cores",
        "",
        "| engine | TTFT (median) | decode tok/s (median) |",
        "|---|---|---|",
        *(f"| {name} | {ttft[name] * 1000:.0f} ms | {rate[name]:.1f} |" for name in results),
        "",
        f"Ray / in-process: decode {rate['ray'] / rate['in-process']:.0%} (target >= 90%), "
        f"TTFT {ttft['ray'] / ttft['in-process']:.2f}x (target <= 1.2x)",
        f"Ray with polling instead of a streaming generator: decode {rate['ray-polling'] / rate['in-process']:.0%}, "
        f"TTFT {ttft['ray-polling'] / ttft['in-process']:.2f}x",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--ray", default="local", help="the Ray cluster: local (started here), auto or HOST:PORT")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    engines = open_engines(args)
    try:
        results = asyncio.run(measure(engines, args.tokens, args.reps))
    finally:
        for engine in reversed(engines.values()):
            engine.close()
    text = report(results, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
