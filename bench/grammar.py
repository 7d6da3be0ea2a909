"""Decode speed with a json_schema grammar versus unconstrained, side by side in one run.

One in-process LlamaCppEngine (one slot) serves, alternating, R repetitions of
  plain:    an ordinary chat request (no tools, no grammar: the path every chat takes),
  grammar:  the same prompt with a `response_format: json_schema` grammar (an array of 24
            strings of up to 40 characters, so the reply is long enough to time decode),
  object:   the same prompt with the `json_object` grammar,
and prints, per mode, the median time to first token and decode tokens/s (tokens after the
first over the time after the first), with each grammar mode as a share of plain.

    python bench/grammar.py [--model qwen2.5-coder-0.5b-instruct] [--tokens 96] [--reps 3]
                            [--threads 2] [--markdown PATH]

Figures depend on the machine and on what else runs on it; compare modes within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from pathlib import Path

from mingyan.bootstrap import open_registry
from mingyan.chat.prompt import chat_prompt_tokens
from mingyan.config import Settings
from mingyan.engine.base import Constraint, GenerationRequest, SamplingParams
from mingyan.engine.llamacpp.engine import EngineConfig, LlamaCppEngine
from mingyan.formats.grammar import json_object_grammar, schema_grammar

PROMPT = "List twenty-four animals, each with a short description, as a JSON array of strings."
SCHEMA = {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 24, "maxItems": 24}


def modes() -> dict[str, Constraint | None]:
    return {"plain": None, "grammar": Constraint(schema_grammar(SCHEMA)), "object": Constraint(json_object_grammar())}


async def timed(engine: LlamaCppEngine, tokens: list[int], constraint: Constraint | None, n: int):
    params = SamplingParams(temperature=0.7, seed=1, max_tokens=n, constraint=constraint)
    start, stamps = time.perf_counter(), []
    stream = engine.generate(GenerationRequest(tuple(tokens), params))
    try:
        async for event in stream:
            if event.text:
                stamps.append(time.perf_counter())
            if event.finish_reason is not None:
                generated = event.usage.completion_tokens
    finally:
        await stream.aclose()
    ttft = stamps[0] - start if stamps else float("nan")
    rate = (generated - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    return ttft, rate, generated


def run(model: str, n: int, reps: int, threads: int) -> dict[str, dict[str, float]]:
    entry = open_registry(Settings(), progress=False).resolve(model)
    engine = LlamaCppEngine(
        entry.path,
        name=model,
        sha256=entry.sha256,
        config=EngineConfig(n_ctx=2048, n_threads=threads, n_slots=1, cache_disk_bytes=0),
    )
    try:
        tokens = chat_prompt_tokens(engine, engine.chat_template, [{"role": "user", "content": PROMPT}])
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in modes()}
        asyncio.run(timed(engine, tokens, None, 8))  # warm-up
        for _ in range(reps):
            for name, constraint in modes().items():
                results[name].append(asyncio.run(timed(engine, tokens, constraint, n)))
    finally:
        engine.close()
    return {
        name: {
            "ttft_s": statistics.median(r[0] for r in rows),
            "tok_s": statistics.median(r[1] for r in rows),
            "tokens": statistics.median(r[2] for r in rows),
        }
        for name, rows in results.items()
    }


def table(model: str, figures: dict[str, dict[str, float]]) -> str:
    plain = figures["plain"]["tok_s"]
    lines = [
        f"model {model}; {platform.processor() or platform.machine()}",
        "| mode | TTFT (s) | decode tok/s | tokens | vs plain |",
        "|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        lines.append(
            f"| {name} | {f['ttft_s']:.2f} | {f['tok_s']:.1f} | {f['tokens']:.0f} | {100 * f['tok_s'] / plain:.0f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    text = table(args.model, run(args.model, args.tokens, args.reps, args.threads))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
