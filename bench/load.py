"""Load benchmarks for OpenAI-compatible chat servers: mingyan, llama-server, llama_cpp.server.

Each server is started in turn on the same GGUF file with the same threads and total
context (never two at once), driven with streaming chat completions, and stopped.

    python bench/load.py sweep --servers mingyan,llama-server,llama-cpp-python \
        --model qwen2.5-coder-0.5b-instruct --concurrency 1,2,4,8 --max-tokens 128 --reps 2 \
        --json out.json --plot docs/throughput.png
    python bench/load.py followup --lengths 250,500,1000,2000 --reps 2 --plot followup.png
    python bench/load.py interleave --conversations 8 --turns 3 --history 250

sweep       C concurrent clients x R requests each (distinct ~50-token prompts asking for long
            answers); p50/p90/p99 TTFT and TPOT, aggregate output tokens/s, cut/error counts.
followup    TTFT of a follow-up turn after ~L tokens of history: warm (the conversation was
            just sent, so a server that keeps its KV cache only evaluates the new suffix) vs
            cold (the same prompt under a never-seen prefix).
interleave  N conversations take turns round-robin against a server with fewer slots;
            p50/p90 follow-up TTFT shows whether each conversation's cache survives.
llama-server comes from bench/build_llama_server.sh (llama.cpp vendored in llama-cpp-python).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shlex
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/load.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scenarios import (
    Workload,
    run_followup,
    run_interleave,
    run_sweep,
    token_counter,
)
from bench.servers import (
    LAUNCHERS,
    ServerConfig,
    default_llama_server,
    describe_machine,
    launch,
    machine_info,
    resolve_gguf,
)

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
DEFAULT_MAX_TOKENS = {"sweep": 128, "followup": 16, "interleave": 32}


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--servers",
        default="mingyan,llama-server,llama-cpp-python",
        help=f"comma-separated, from {', '.join(LAUNCHERS)}",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="mingyan registry name")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--n-ctx",
        type=int,
        default=4096,
        help="context per slot, i.e. the longest conversation (llama-server "
        "gets -c N*slots; llama_cpp.server, one sequence, gets N)",
    )
    parser.add_argument(
        "--slots", type=int, default=4, help="sequences decoded together: mingyan --n-slots, llama-server -np"
    )
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--llama-server", type=Path, default=default_llama_server())
    for name in LAUNCHERS:
        parser.add_argument(
            f"--{name}-args",
            default="",
            metavar="ARGS",
            help=f'extra arguments for {name}, one string: --{name}-args="--flag value"',
        )
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument("--log-dir", type=Path, default=None, help="keep server logs here")
    parser.add_argument("--json", type=Path, default=None, help="write raw results here")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG plot here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    sweep = sub.add_parser("sweep", help="throughput and latency vs concurrency")
    sweep.add_argument("--concurrency", type=int_list, default=[1, 2, 4, 8])
    sweep.add_argument("--reps", type=int, default=2, help="requests per client")
    followup = sub.add_parser("followup", help="follow-up TTFT vs history length, cold/warm")
    followup.add_argument("--lengths", type=int_list, default=[250, 500, 1000, 2000])
    followup.add_argument("--reps", type=int, default=1)
    followup.add_argument("--reply-tokens", type=int, default=64, help="max_tokens of the turn before the follow-up")
    interleave = sub.add_parser("interleave", help="N conversations round-robin")
    interleave.add_argument("--conversations", type=int, default=8)
    interleave.add_argument("--turns", type=int, default=3)
    interleave.add_argument("--history", type=int, default=250, help="tokens of prior history")
    for each in (sweep, followup, interleave):
        common_options(each)
    return parser


def server_config(args: argparse.Namespace) -> ServerConfig:
    extra = {name: shlex.split(getattr(args, f"{name.replace('-', '_')}_args")) for name in LAUNCHERS}
    return ServerConfig(
        model=args.model,
        gguf=resolve_gguf(args.model),
        threads=args.threads,
        n_ctx=args.n_ctx,
        slots=args.slots,
        llama_server_bin=args.llama_server,
        extra_args=extra,
        startup_timeout_s=args.startup_timeout,
    )


def scenario_runner(args: argparse.Namespace, cfg: ServerConfig):
    """A coroutine factory: server -> results, for the chosen scenario."""
    work = Workload(max_tokens=args.max_tokens, temperature=args.temperature)
    if args.scenario == "sweep":
        return lambda srv: run_sweep(srv, args.concurrency, args.reps, work)
    count = token_counter(cfg.gguf)
    if args.scenario == "followup":
        return lambda srv: run_followup(srv, args.lengths, args.reps, args.reply_tokens, work, count)
    return lambda srv: run_interleave(srv, args.conversations, args.turns, args.history, work, count)


def run_all(args: argparse.Namespace, cfg: ServerConfig) -> dict[str, dict]:
    runner = scenario_runner(args, cfg)
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
        with launch(name, cfg, args.log_dir) as server:
            print(f"# running {args.scenario} on {name}", file=sys.stderr)
            results = asyncio.run(runner(server))
        out[name] = {"command": server.launch.argv, "results": results}
    return out


def fmt(value: object, scale: float = 1.0, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value * scale:.{digits}f}"
    return str(value)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def sweep_table(servers: dict[str, dict]) -> str:
    headers = [
        "server",
        "C",
        "reqs",
        "tok/s",
        "ttft p50",
        "p90",
        "p99",
        "tpot p50 ms",
        "p90",
        "p99",
        "mean tok",
        "ok",
        "cut",
        "err",
    ]
    rows = [
        [
            name,
            str(p["concurrency"]),
            str(p["requests"]),
            fmt(p["output_tok_s"], digits=1),
            fmt(p["ttft_p50_s"]),
            fmt(p["ttft_p90_s"]),
            fmt(p["ttft_p99_s"]),
            fmt(p["tpot_p50_s"], 1000, 1),
            fmt(p["tpot_p90_s"], 1000, 1),
            fmt(p["tpot_p99_s"], 1000, 1),
            fmt(p["mean_tokens"], digits=1),
            str(p["ok"]),
            str(p["cut"]),
            str(p["errors"]),
        ]
        for name, data in servers.items()
        for p in data["results"]
    ]
    return table(headers, rows) + "\n(TTFT in seconds, TPOT in milliseconds)"


def followup_table(servers: dict[str, dict]) -> str:
    headers = ["server", "history", "prompt tok", "cold ttft s", "warm ttft s", "cold cached", "warm cached", "err"]
    rows = [
        [
            name,
            str(r["history_tokens"]),
            fmt(r["prompt_tokens"], digits=0),
            fmt(r["cold_ttft_p50_s"]),
            fmt(r["warm_ttft_p50_s"]),
            fmt(r["cold_cached_p50"], digits=0),
            fmt(r["warm_cached_p50"], digits=0),
            str(r["errors"]),
        ]
        for name, data in servers.items()
        for r in data["results"]
    ]
    return table(headers, rows) + "\n(p50 over reps; cached = tokens the server reports reused)"


def interleave_table(servers: dict[str, dict]) -> str:
    headers = ["server", "first ttft p50", "follow-up p50", "p90", "prompt tok", "cached", "cut", "err"]
    rows = [
        [
            name,
            fmt(r["first_ttft_p50_s"]),
            fmt(r["followup_ttft_p50_s"]),
            fmt(r["followup_ttft_p90_s"]),
            fmt(r["followup_prompt_p50"], digits=0),
            fmt(r["followup_cached_p50"], digits=0),
            str(r["cut"]),
            str(r["errors"]),
        ]
        for name, data in servers.items()
        for r in [data["results"]]
    ]
    return table(headers, rows) + "\n(TTFT in seconds; prompt/cached tokens: p50 of follow-ups)"


TABLES = {"sweep": sweep_table, "followup": followup_table, "interleave": interleave_table}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_tokens is None:
        args.max_tokens = DEFAULT_MAX_TOKENS[args.scenario]
    machine = machine_info(args.llama_server)
    print(describe_machine(machine), flush=True)
    cfg = server_config(args)
    print(
        f"# model: {args.model} ({cfg.gguf.name}), threads {cfg.threads}, n_ctx per slot "
        f"{cfg.n_ctx}, slots {cfg.slots}, max_tokens {args.max_tokens}",
        flush=True,
    )
    servers = run_all(args, cfg)
    print(TABLES[args.scenario](servers))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    report = {"scenario": args.scenario, "machine": machine, "config": config, "servers": servers}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    if args.plot:
        from bench.plot import plot

        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
