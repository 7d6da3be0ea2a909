"""Follow-up TTFT after a server restart: mingyan's disk KV cache vs a cold prefill.

    python bench/restart.py [--model qwen2.5-coder-0.5b-instruct] [--history 2000] [--reps 2]

Per repetition, on a fresh KV directory: start mingyan, send a conversation with ~H tokens
of history (a cold prefill: its TTFT is the "cold" figure), stop the server (it saves the
conversation's KV state on the way out), start it again, and send the follow-up turn. The
follow-up's TTFT after the restart is compared with the cold TTFT. A second cold figure, the
same follow-up under a never-seen prefix on the restarted server, checks the first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as `python bench/restart.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import nonce, percentile
from bench.scenarios import QUESTIONS, Messages, Workload, ask, history, system, token_counter
from bench.servers import ServerConfig, default_llama_server, describe_machine, launch, machine_info, resolve_gguf


async def one_turn(server, messages: Messages, work: Workload):
    async with httpx.AsyncClient(timeout=600) as client:
        return await ask(client, server, messages, work.max_tokens, work.temperature)


def repetition(cfg: ServerConfig, past: Messages, work: Workload) -> dict[str, float]:
    kv_dir = tempfile.mkdtemp(prefix="mingyan-kv-")
    cfg = ServerConfig(**{**cfg.__dict__, "extra_args": {"mingyan": ["--kv-dir", kv_dir]}})
    first = [system(nonce()), *past, {"role": "user", "content": QUESTIONS[0]}]
    with launch("mingyan", cfg) as server:
        cold = asyncio.run(one_turn(server, first, work))
    follow = [*first, {"role": "assistant", "content": cold.text}, {"role": "user", "content": QUESTIONS[1]}]
    with launch("mingyan", cfg) as server:
        warm = asyncio.run(one_turn(server, follow, work))
        cold_again = asyncio.run(one_turn(server, [system(nonce()), *follow[1:]], work))
    return {
        "cold_ttft_s": cold.ttft_s,
        "restart_ttft_s": warm.ttft_s,
        "restart_cached": float(warm.cached_tokens or 0),
        "prompt_tokens": float(warm.prompt_tokens or 0),
        "cold_followup_ttft_s": cold_again.ttft_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args(argv)
    gguf = resolve_gguf(args.model)
    cfg = ServerConfig(
        model=args.model,
        gguf=gguf,
        threads=args.threads,
        n_ctx=4096,
        slots=4,
        llama_server_bin=default_llama_server(),
        extra_args={},
    )
    print(describe_machine(machine_info()))
    past = history(args.history, token_counter(gguf))
    work = Workload(max_tokens=args.max_tokens, temperature=0.7)
    runs = [repetition(cfg, past, work) for _ in range(args.reps)]
    med = {key: percentile([r[key] for r in runs], 50) for key in runs[0]}
    print(f"\nmodel {args.model}, history ~{args.history} tokens, {args.reps} repetitions (medians)")
    print(f"follow-up prompt tokens            {med['prompt_tokens']:.0f}")
    print(f"cold prefill TTFT (first turn)     {med['cold_ttft_s']:.2f} s")
    print(f"cold TTFT, same follow-up, new prefix {med['cold_followup_ttft_s']:.2f} s")
    print(
        f"after restart TTFT (follow-up)     {med['restart_ttft_s']:.2f} s  "
        f"({med['restart_cached']:.0f} tokens from the disk cache)"
    )
    print(f"ratio restart / cold               {med['restart_ttft_s'] / med['cold_followup_ttft_s']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
