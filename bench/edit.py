"""Edit workloads: the reply returns a long text of the prompt with small changes.

This is where prompt-lookup speculative decoding pays: most of the reply is a copy. Each
server is started in turn on the same GGUF file and threads (never two at once):
mingyan (speculation on, the default), mingyan with `--no-speculative`, and llama-server in
its default configuration (no draft model, so no speculation), and driven at each concurrency
with greedy streaming chat completions of one workload:

    python bench/edit.py --workload code --lines 300 --concurrency 1,4 --reps 1 \
        --json bench/results/edit-code.json
    python bench/edit.py --workload zh --concurrency 1,4 --reps 1
    python bench/edit.py --model BIG --draft-model SMALL --servers mingyan-nospec,mingyan-draft

code  a generated Python file of --lines lines: "rename X to Y and return the whole file".
zh    a Chinese passage with wrong characters: "correct it and return the whole passage".

Reported per server and concurrency: aggregate output tokens/s, p50 decode tokens/s of one
stream (1 / TPOT), p50 TTFT, and the ratio of output tokens/s to llama-server's. Every
request has a fresh prefix (no KV reuse between requests). mingyan's /metrics drafted and
accepted tokens are reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as `python bench/edit.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loadgen import chat_body, nonce, percentile, stream_chat, summarize
from bench.servers import ServerConfig, default_llama_server, describe_machine, launch, machine_info, resolve_gguf

ZH_PASSAGE = (
    "长城是中国古代的军事防御工程，修筑的历史可上朔到西周时期。秦灭六国统一天下后，秦始皇连接和修缮战国长城，"
    "始有万里长城之称。明朝是最后一个大规模修筑长城的朝代，今天人们所看到的长城多是此时修筑。"
    "长城东起山海关，西至嘉峪关，全长两万多公里，它不仅是建筑史上的奇迹，也是中华民族坚韧不拔精神的像征。"
    "每年都有成千上万的游客来到八达岭，登上城墙，眺望连棉起伏的群山。许多人说，不到长城非好汉。"
    "长城的修建凝聚了无数劳动人民的血汉与智慧，它见证了两千多年的历史变迁。"
)
# Wrong characters above: 朔(溯) 像(象) 棉(绵) 汉(汗). The passage is repeated to make it longer.
SERVERS = {
    "mingyan": ("mingyan", ["--speculative"]),
    "mingyan-nospec": ("mingyan", ["--no-speculative"]),
    "llama-server": ("llama-server", []),
}


def code_file(lines: int) -> str:
    """A plausible Python module of about `lines` lines that uses `fetch_records` often."""
    out = ['"""Inventory helpers."""', "", "import json", ""]
    i = 0
    while len(out) < lines:
        out += [
            f"def report_{i}(store, limit={10 + i}):",
            f'    """Summarise shelf {i} of the store."""',
            f"    rows = fetch_records(store, shelf={i}, limit=limit)",
            "    total = sum(row['count'] for row in rows)",
            f"    if total > {100 + 7 * i}:",
            f"        print('shelf {i} is full', json.dumps(rows[:3]))",
            f"    return {{'shelf': {i}, 'total': total, 'rows': len(rows)}}",
            "",
        ]
        i += 1
    return "\n".join(out[:lines]) + "\n"


def messages(workload: str, lines: int, tag: str) -> list[dict[str, str]]:
    if workload == "code":
        text = (
            "Rename the function `fetch_records` to `load_rows` everywhere in this file and return the "
            f"whole file, nothing else.\n\n```python\n{code_file(lines)}```"
        )
    else:
        passage = "\n\n".join([ZH_PASSAGE] * max(1, lines // 50))
        text = "请改正下面这段文字中的错别字，并返回完整的全文，不要解释。\n\n" + passage
    return [
        {"role": "system", "content": f"Session {tag}. You are a careful editor."},
        {"role": "user", "content": text},
    ]


async def phase(base_url: str, model: str, args: argparse.Namespace, clients: int) -> dict:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=clients + 2)) as client:

        async def one() -> list:
            out = []
            for _ in range(args.reps):
                body = chat_body(model, messages(args.workload, args.lines, nonce()), args.max_tokens, 0.0, True)
                out.append(await stream_chat(client, base_url, body))
            return out

        start = time.perf_counter()
        results = [r for rs in await asyncio.gather(*(one() for _ in range(clients))) for r in rs]
        wall = time.perf_counter() - start
    summary = summarize(results, wall)
    summary["decode_tok_s_p50"] = 1.0 / percentile([r.tpot_s for r in results], 50)
    return {"concurrency": clients, **summary, "texts": [r.text for r in results]}


def draft_counts(base_url: str) -> dict[str, float]:
    text = httpx.get(base_url + "/metrics").text
    found = re.findall(r"^(mingyan_draft_\w+?)(?:_total)?\{[^}]*\} (\S+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in found}


def server_flags(label: str, args: argparse.Namespace) -> tuple[str, list[str]]:
    """The server kind and flags of `label`; `mingyan-draft`: drafts by --draft-model only."""
    if label == "mingyan-draft":
        if not args.draft_model:
            raise SystemExit("mingyan-draft needs --draft-model NAME")
        return "mingyan", ["--no-speculative", "--draft-model", args.draft_model]
    return SERVERS[label]


def run_server(label: str, cfg: ServerConfig, args: argparse.Namespace) -> dict:
    kind, extra = server_flags(label, args)
    cfg = replace(cfg, extra_args={kind: extra + cfg.extra_args.get(kind, [])})
    with launch(kind, cfg, args.log_dir) as server:
        print(f"# running {args.workload} on {label}", file=sys.stderr)
        phases = []
        for clients in args.concurrency:
            asyncio.run(phase(server.base_url, server.launch.model_field, replace_reps(args, 1), 1))  # warm-up
            phases.append(asyncio.run(phase(server.base_url, server.launch.model_field, args, clients)))
        drafts = draft_counts(server.base_url) if kind == "mingyan" else {}
    return {"command": server.launch.argv, "phases": phases, "drafts": drafts}


def replace_reps(args: argparse.Namespace, reps: int) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "reps": reps})


def report(results: dict[str, dict]) -> str:
    base = {p["concurrency"]: p["output_tok_s"] for p in results.get("llama-server", {}).get("phases", [])}
    lines = ["server          C  out tok/s  decode tok/s p50  ttft p50 s  vs llama-server  ok/cut/err"]
    for label, data in results.items():
        for p in data["phases"]:
            ratio = p["output_tok_s"] / base[p["concurrency"]] if p["concurrency"] in base else float("nan")
            lines.append(
                f"{label:<15} {p['concurrency']:>2}  {p['output_tok_s']:9.1f}  {p['decode_tok_s_p50']:16.1f}"
                f"  {p['ttft_p50_s']:10.2f}  {ratio:15.2f}  {p['ok']}/{p['cut']}/{p['errors']}"
            )
        if data["drafts"]:
            lines.append(f"{'':<15} drafts: {data['drafts']}")
    texts = {label: data["phases"][0]["texts"][0] for label, data in results.items() if data["phases"]}
    same = len(set(texts.values())) == 1
    lines.append(f"first reply identical on all servers: {same}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("code", "zh"), default="code")
    parser.add_argument("--lines", type=int, default=300, help="lines of the file (code); zh: 50 per passage copy")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument(
        "--draft-model", default=None, help="server mingyan-draft: this model drafts (prompt lookup off)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--n-ctx", type=int, default=8192, help="context per slot (prompt + the whole reply)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4])
    parser.add_argument("--reps", type=int, default=1, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--llama-server", type=Path, default=default_llama_server())
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    machine = machine_info(args.llama_server)
    print(describe_machine(machine), flush=True)
    cfg = ServerConfig(
        model=args.model,
        gguf=resolve_gguf(args.model),
        threads=args.threads,
        n_ctx=args.n_ctx,
        slots=args.slots,
        llama_server_bin=args.llama_server,
    )
    results = {label: run_server(label, cfg, args) for label in args.servers.split(",") if label}
    print(report(results))
    if args.json:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "config": config, "servers": results}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
