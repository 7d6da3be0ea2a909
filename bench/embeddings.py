"""Embedding throughput at batch sizes 1, 16 and 64: inputs/s and tokens/s, side by side in one run.

Three paths over the same GGUF (the shipped multilingual-e5-small unless --model) and threads:
  llama-cpp    llama-cpp-python's high-level `Llama.embed` (llama.cpp's own embedding path)
  engine       mingyan's LlamaCppEmbedder in process (one worker thread, batched llama_decode)
  http         POST /v1/embeddings on a `mingyan serve` started here (float encoding)
Inputs are mixed Chinese and English sentences (~15-40 tokens each), different in every batch.
For each batch size, one warm-up per path, then `--reps` repetitions in which the paths take turns
(on the same texts); medians are reported.

    python bench/embeddings.py [--model NAME] [--reps 5] [--threads N] [--no-http] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

BATCHES = (1, 16, 64)
SENTENCES = (
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "今天的股票市场因为利率上调而大幅下跌，投资者情绪低迷。",
    "Retrieval-augmented generation finds relevant passages before the model answers.",
    "我喜欢在周末和朋友一起去山里徒步，呼吸新鲜空气。",
    "How many grams of protein should an adult eat every day to stay healthy?",
)


def texts(n: int, offset: int) -> list[str]:
    return [f"{offset + i}: {SENTENCES[(offset + i) % len(SENTENCES)]}" for i in range(n)]


def measure(paths: dict[str, Callable[[list[str]], int]], batch: int, reps: int) -> dict[str, tuple[float, float]]:
    """Median inputs/s and tokens/s of each path (a run returns the tokens it embedded).

    The paths take turns within each repetition, so a burst of load from elsewhere on the machine
    hits all of them alike instead of one path's whole series."""
    for run in paths.values():
        run(texts(batch, 10_000))  # warm-up
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for rep in range(reps):
        batch_texts = texts(batch, rep * batch)
        for name, run in paths.items():
            start = time.perf_counter()
            tokens = run(batch_texts)
            elapsed = time.perf_counter() - start
            rates[name].append((batch / elapsed, tokens / elapsed))
    return {
        name: (statistics.median(r for r, _ in got), statistics.median(t for _, t in got))
        for name, got in rates.items()
    }


def llama_cpp_path(path: Path, threads: int) -> Callable[[list[str]], int]:
    import llama_cpp

    llama = llama_cpp.Llama(
        str(path),
        embedding=True,
        n_ctx=2048,
        n_batch=2048,
        n_ubatch=2048,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )

    def run(batch: list[str]) -> int:
        llama.embed(batch)
        return sum(len(llama.tokenize(t.encode())) for t in batch)

    return run


def engine_path(path: Path, name: str, threads: int):
    from mingyan.engine.embedding import LlamaCppEmbedder

    embedder = LlamaCppEmbedder(path, name=name, sha256="-", n_threads=threads)
    loop = asyncio.new_event_loop()

    def run(batch: list[str]) -> int:
        return loop.run_until_complete(embedder.embed(batch)).prompt_tokens

    return run, embedder


def start_server(model: str, threads: int, data_dir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINGYAN_")} | {"MINGYAN_DATA_DIR": data_dir}
    cmd = [
        sys.executable,
        "-m",
        "mingyan",
        "serve",
        "--port",
        str(port),
        "--model",
        "smollm2-135m-instruct",
        "--n-ctx",
        "512",
        "--embedding-model",
        model,
        "--n-threads",
        str(threads),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("mingyan serve did not start")


def http_path(url: str, model: str) -> Callable[[list[str]], int]:
    client = httpx.Client(base_url=url, timeout=600)

    def run(batch: list[str]) -> int:
        r = client.post("/v1/embeddings", json={"model": model, "input": batch})
        r.raise_for_status()
        return r.json()["usage"]["prompt_tokens"]

    return run


def main() -> None:
    from mingyan.bootstrap import open_registry
    from mingyan.config import DEFAULT_EMBEDDING_MODEL, Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP path")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()

    path = open_registry(Settings(), progress=False).resolve(args.model).path
    paths: dict[str, Callable[[list[str]], int]] = {"llama-cpp": llama_cpp_path(path, args.threads)}
    paths["engine"], embedder = engine_path(path, args.model, args.threads)
    server = None
    if not args.no_http:
        data_dir = tempfile.mkdtemp(prefix="mingyan-bench-embed-")
        server, url = start_server(args.model, args.threads, data_dir)
        paths["http"] = http_path(url, args.model)
    try:
        rows = ["| path | batch | inputs/s | tokens/s |", "|---|---|---|---|"]
        for batch in BATCHES:
            for name, (rate, token_rate) in measure(paths, batch, args.reps).items():
                rows.append(f"| {name} | {batch} | {rate:.1f} | {token_rate:.0f} |")
                print(rows[-1], flush=True)
    finally:
        embedder.close()
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    table = "\n".join(rows)
    print(f"\n{args.model}, {args.threads} threads, {args.reps} repetitions (medians)\n{table}")
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
