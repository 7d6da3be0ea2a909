"""Decode speed through mingyan's HTTP streaming path versus a plain llama-cpp-python loop.

For each model, on the same GGUF file and thread count, this alternates R repetitions of
  raw:  Llama.eval(prompt) then sample/eval one token at a time (the engine's ceiling), and
  http: `mingyan serve` in a subprocess, POST /v1/chat/completions with stream=true,
and prints median time to first token and decode tokens/s for both, with the ratio http/raw.
The raw model and the server never compute at the same time (one idles while the other runs).

    python bench/decode_http_vs_raw.py [--models a,b] [--tokens 128] [--reps 3]
                                       [--threads N] [--raw-flash-attn on|off] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as `python bench/decode_http_vs_raw.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_MODELS = "smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct"
N_CTX = 2048
N_BATCH = 512
WARMUP_TOKENS = 8
STARTUP_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 600.0
EDIT_LINES = 60  # the edit workload's file: prompt and reply fit N_CTX
USER_PROMPT = (
    "Write a long story about a lighthouse keeper who finds a message in a bottle. "
    "Describe the sea, the weather and the people of the village in detail."
)


@dataclass
class Sample:
    ttft_s: float
    decode_tps: float
    n_tokens: int
    n_prompt: int
    text: str


def messages(tag: str, workload: str = "story") -> list[dict[str, str]]:
    """The chat for one repetition; the tag comes first so no two reps share a KV prefix.
    `edit`: a file to return with a rename (bench/edit.py), where speculative decoding pays."""
    if workload == "edit":
        from bench.edit import messages as edit_messages

        return edit_messages("code", EDIT_LINES, tag)
    return [
        {"role": "system", "content": f"Session {tag}. You are a helpful storyteller."},
        {"role": "user", "content": USER_PROMPT},
    ]


def decode_rate(n_tokens: int, first: float, last: float) -> float:
    return (n_tokens - 1) / (last - first) if n_tokens > 1 and last > first else float("nan")


class RawRunner:
    """A plain llama-cpp-python decode loop, prompt rendered with the model's own chat template."""

    def __init__(self, path: Path, threads: int, flash_attn: bool) -> None:
        import llama_cpp

        from mingyan.engine.llamacpp.high_level import load_llama
        from mingyan.formats.template import ChatTemplate

        self.lib = llama_cpp
        self.llm = load_llama(path, n_ctx=N_CTX, n_threads=threads, n_batch=N_BATCH, flash_attn=flash_attn)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        bos, eos = (self._text(t) for t in (self.llm.token_bos(), self.llm.token_eos()))
        self.template = ChatTemplate(self.llm.metadata["tokenizer.chat_template"], bos_token=bos, eos_token=eos)

    def _text(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def prompt_tokens(self, chat: list[dict[str, str]]) -> list[int]:
        text = self.template.render(chat)
        bos = self.template.bos_token
        return self.llm.tokenize(text.encode(), add_bos=not (bos and text.startswith(bos)), special=True)

    def run(self, chat: list[dict[str, str]], n_tokens: int) -> Sample:
        prompt = self.prompt_tokens(chat)
        self.llm.reset()
        start = time.perf_counter()
        self.llm.eval(prompt)
        out: list[int] = []
        first = last = start
        while len(out) < n_tokens:
            token = self.llm.sample(temp=0.0, top_k=1)
            last = time.perf_counter()
            if self.lib.llama_vocab_is_eog(self.vocab, token):
                break
            out.append(token)
            if len(out) == 1:
                first = last
            if len(out) < n_tokens:
                self.llm.eval([token])
        text = self.llm.detokenize(out).decode("utf-8", errors="replace")
        return Sample(first - start, decode_rate(len(out), first, last), len(out), len(prompt), text)

    def close(self) -> None:
        self.llm.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, threads: int, log: Path, kv_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mingyan",
        "serve",
        "--model",
        model,
        "--port",
        str(port),
        "--n-threads",
        str(threads),
        "--n-ctx",
        str(N_CTX),
        "--n-batch",
        str(N_BATCH),
        "--kv-dir",
        kv_dir,
    ]
    with log.open("wb") as sink:
        # Own session: a Ctrl-C reaches only this script, which then stops the server.
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    stop_server(proc)
    raise RuntimeError(f"server did not answer /health within {STARTUP_TIMEOUT_S:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_http(client: httpx.Client, base: str, model: str, chat: list[dict[str, str]], n_tokens: int) -> Sample:
    body = {
        "model": model,
        "messages": chat,
        "stream": True,
        "temperature": 0,
        "max_tokens": n_tokens,
        "stream_options": {"include_usage": True},
    }
    times: list[float] = []
    parts: list[str] = []
    usage: dict = {}
    start = time.perf_counter()
    with client.stream("POST", f"{base}/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            now = time.perf_counter()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: ") :])
            if "error" in chunk:
                raise RuntimeError(f"server error: {chunk['error']}")
            usage = chunk.get("usage") or usage
            content = "".join((c.get("delta") or {}).get("content") or "" for c in chunk["choices"])
            if content:
                times.append(now)
                parts.append(content)
    if not times or not usage:
        raise RuntimeError("stream carried no content or no usage")
    n = int(usage["completion_tokens"])
    return Sample(times[0] - start, decode_rate(n, times[0], times[-1]), n, int(usage["prompt_tokens"]), "".join(parts))


@dataclass
class ModelResult:
    name: str
    path: Path
    raw: list[Sample]
    http: list[Sample]
    warm: list[Sample]


def bench_model(name: str, path: Path, args: argparse.Namespace) -> ModelResult:
    result = ModelResult(name, path, [], [], [])
    print(f"[{name}] loading raw model and starting server ...", file=sys.stderr, flush=True)
    raw = RawRunner(path, args.threads, args.raw_flash_attn == "on")
    fd, log_name = tempfile.mkstemp(prefix="mingyan-bench-", suffix=".log")
    os.close(fd)
    log = Path(log_name)
    # A fresh KV directory: states saved by earlier runs must not make a "cold" prompt warm.
    kv_dir = tempfile.mkdtemp(prefix="mingyan-kv-")
    proc = None
    try:
        proc, base = start_server(name, args.threads, log, kv_dir)
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            raw.run(messages("warm-up", args.workload), WARMUP_TOKENS)
            run_http(client, base, name, messages("warm-up", args.workload), WARMUP_TOKENS)
            run_tag = uuid.uuid4().hex[:8]
            for rep in range(args.reps):
                chat = messages(f"{run_tag}-{rep + 1}", args.workload)
                result.raw.append(raw.run(chat, args.tokens))
                result.http.append(run_http(client, base, name, chat, args.tokens))
                # The same chat again: the server reuses the cached KV prefix.
                result.warm.append(run_http(client, base, name, chat, 1))
                print(
                    f"[{name}] rep {rep + 1}/{args.reps}: decode raw "
                    f"{result.raw[-1].decode_tps:.1f} / http {result.http[-1].decode_tps:.1f} tok/s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if proc is not None:
            stop_server(proc)
        raw.close()
        log.unlink(missing_ok=True)
        shutil.rmtree(kv_dir, ignore_errors=True)
    return result


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(args: argparse.Namespace) -> list[str]:
    import llama_cpp

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores ({usable} usable by this process)",
        f"- OS: {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- llama-cpp-python {llama_cpp.__version__}; threads: {args.threads}; n_ctx {N_CTX}, "
        f"n_batch {N_BATCH}; raw path flash attention: {args.raw_flash_attn}; "
        f"{args.tokens} tokens per request",
    ]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def model_table(res: ModelResult) -> list[str]:
    ttft_raw, ttft_http = (median([s.ttft_s * 1000 for s in xs]) for xs in (res.raw, res.http))
    tps_raw, tps_http = (median([s.decode_tps for s in xs]) for xs in (res.raw, res.http))
    warm = median([s.ttft_s * 1000 for s in res.warm])
    per_rep = lambda xs: ", ".join(f"{s.decode_tps:.1f}" for s in xs)  # noqa: E731
    same = sum(r.text == h.text for r, h in zip(res.raw, res.http, strict=True))
    size_mb = res.path.stat().st_size / 1e6
    return [
        f"### {res.name}",
        "",
        f"File `{res.path.name}`, {size_mb:.0f} MB; {len(res.raw)} repetitions, medians.",
        "",
        "| | raw llama-cpp-python | mingyan HTTP stream | http/raw |",
        "|---|---|---|---|",
        f"| decode tok/s | {tps_raw:.1f} | {tps_http:.1f} | {ratio(tps_http, tps_raw)} |",
        f"| TTFT, cold prompt (ms) | {ttft_raw:.0f} | {ttft_http:.0f} | {ratio(ttft_http, ttft_raw)} |",
        f"| TTFT, same prompt repeated (ms) | — | {warm:.0f} (KV prefix reused) | |",
        f"| decode tok/s per repetition | {per_rep(res.raw)} | {per_rep(res.http)} | |",
        f"| prompt / completion tokens | {res.raw[0].n_prompt} / "
        f"{median([s.n_tokens for s in res.raw]):.0f} | {res.http[0].n_prompt} / "
        f"{median([s.n_tokens for s in res.http]):.0f} | |",
        f"| identical greedy text | {same}/{len(res.raw)} repetitions | | |",
        "",
    ]


def report(results: list[ModelResult], args: argparse.Namespace, command: str) -> str:
    lines = [
        "## Decode: HTTP streaming vs raw llama-cpp-python",
        "",
        *machine_lines(args),
        "",
        f"Command: `{command}`",
        "",
    ]
    for res in results:
        lines += model_table(res)
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names")
    parser.add_argument("--tokens", type=int, default=128, help="tokens to generate per request")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per path")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--raw-flash-attn",
        choices=("on", "off"),
        default="on",
        help="flash attention for the raw loop; llama.cpp's default (auto), which "
        "mingyan's engine keeps, turns it on for CPU (default: on)",
    )
    parser.add_argument(
        "--workload", choices=("story", "edit"), default="story", help="edit: return a file with a rename"
    )
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.tokens < 2 or args.reps < 1 or args.threads < 1:
        parser.error("--tokens must be >= 2, --reps and --threads >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mingyan.bootstrap import open_registry
    from mingyan.config import Settings

    command = shlex.join(["python", "bench/decode_http_vs_raw.py", *(sys.argv[1:] if argv is None else argv)])
    registry = open_registry(Settings())
    try:
        results = [bench_model(name, registry.resolve(name).path, args) for name in args.models.split(",") if name]
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    text = report(results, args, command)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
