"""Where a decode step's time goes: cProfile of the engine's `_step` at 1, 4 and 8 streams.

    python bench/profile_step.py --model smollm2-135m-instruct --streams 1,4,8 --tokens 96

Runs the engine in process (greedy, distinct prompts asking for long answers), profiles only
the decode thread's steps, and prints per stream count the wall time, the share of the step
spent inside `llama_decode`, the Python time per generated token outside it, and the top
functions by own time. Add `--no-speculative` to profile without drafts, `--edit` for a prompt
whose answer copies it (drafts accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/profile_step.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def profile(args: argparse.Namespace, streams: int) -> None:
    from bench.edit import messages as edit_messages
    from mingyan.bootstrap import open_registry
    from mingyan.config import Settings
    from mingyan.engine.base import GenerationRequest, SamplingParams
    from mingyan.engine.llamacpp.config import EngineConfig
    from mingyan.engine.llamacpp.engine import LlamaCppEngine

    entry = open_registry(Settings(), progress=False).resolve(args.model)
    config = EngineConfig(
        n_ctx=4096, n_slots=streams, n_threads=args.threads, cache_disk_bytes=0, speculative=args.speculative
    )
    engine = LlamaCppEngine(entry.path, name=args.model, config=config)
    profiler = cProfile.Profile()
    step = engine._step  # the decode thread's step, wrapped (a benchmark may reach inside)

    def profiled_step() -> None:
        profiler.enable()
        try:
            step()
        finally:
            profiler.disable()

    engine._step = profiled_step  # type: ignore[method-assign]

    async def one(i: int) -> int:
        chat = (
            edit_messages("code", 40, f"s{i}")
            if args.edit
            else [{"role": "user", "content": f"{i}. Write a long essay about rivers and the towns beside them."}]
        )
        prompt = tuple(engine.tokenize(engine.chat_template.render(chat)))
        params = SamplingParams(temperature=0, max_tokens=args.tokens)
        last = None
        async for event in engine.generate(GenerationRequest(prompt, params, user=str(i))):
            last = event
        return last.usage.completion_tokens if last and last.usage else 0

    async def all_streams() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(streams)))

    start = time.perf_counter()
    generated = sum(asyncio.run(all_streams()))
    wall = time.perf_counter() - start
    stats = engine.stats()
    engine.close()
    report(profiler, streams, generated, wall, stats, args.top)


def report(profiler, streams: int, generated: int, wall: float, stats, top: int) -> None:
    out = io.StringIO()
    table = pstats.Stats(profiler, stream=out)
    total = sum(row[2] for row in table.stats.values())  # own time of every function
    decode = sum(row[2] for key, row in table.stats.items() if key[2] == "decode_batch")
    print(
        f"## {streams} stream(s): {generated} tokens in {wall:.1f} s; step time {total:.2f} s, "
        f"llama_decode {decode / max(total, 1e-9):.0%}; Python outside it "
        f"{(total - decode) / max(generated, 1) * 1000:.3f} ms per token; drafts "
        f"{stats.accepted_tokens_total}/{stats.drafted_tokens_total} accepted"
    )
    table.sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--streams", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--speculative", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--edit", action="store_true", help="a prompt whose answer copies it")
    args = parser.parse_args(argv)
    for streams in args.streams:
        profile(args, streams)
    return 0


if __name__ == "__main__":
    sys.exit(main())
