"""What durable conversations and accounts cost per reply, measured side by side on one server.

One `mingyan serve` (fresh data dir, SQLite, `--api-key` for the operator, one user account with
an API key). Each repetition runs four streamed replies to the same kind of prompt, in turn:
  v1/operator   POST /v1/chat/completions with the server key (no accounts work, nothing stored)
  api/operator  POST /api/conversations/{id}/messages with the server key (stored, partial saves)
  v1/user       the same /v1 request with the user's key (key lookup, quotas, usage record)
  api/user      the same /api request with the user's key
Each prompt starts with a fresh tag, so nothing comes from the KV cache. Prints median time to
first token and decode tokens/s per path, and the ratios against v1/operator.

    python bench/conversation_overhead.py [--model NAME] [--tokens 128] [--reps 5] [--markdown PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

SERVER_KEY = "bench-operator-key"
PASSWORD = "bench password 123"
PROMPT = (
    "Write a long story about a lighthouse keeper who finds a message in a bottle. "
    "Describe the sea, the weather and the people of the village in detail."
)
PATHS = ("v1/operator", "api/operator", "v1/user", "api/user")


@dataclass
class Sample:
    ttft_s: float
    decode_tps: float
    pieces: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mingyan(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mingyan", *args], env=env, input=stdin, text=True, capture_output=True, check=True
    )


def start_server(model: str, data_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    log = open(data_dir / "server.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mingyan",
            "serve",
            "--model",
            model,
            "--port",
            str(port),
            "--n-ctx",
            "2048",
            "--api-key",
            SERVER_KEY,
            "--no-auto-titles",
            "--quota-requests-per-minute",
            "0",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError((data_dir / "server.log").read_text())


def timed(lines: Iterator[str], text_of: Callable[[dict], str], started: float) -> Sample:
    times = []
    for line in lines:
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        if text_of(json.loads(line[6:])):
            times.append(time.perf_counter())
    if len(times) < 2:
        raise RuntimeError("the reply was too short to time")
    return Sample(times[0] - started, (len(times) - 1) / (times[-1] - times[0]), len(times))


def v1_text(event: dict) -> str:
    choices = event.get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


def api_text(event: dict) -> str:
    return event.get("text", "") if event.get("type") == "delta" else ""


def run_v1(client: httpx.Client, tokens: int) -> Sample:
    tag = uuid.uuid4().hex[:8]
    body = {
        "messages": [
            {"role": "system", "content": f"Session {tag}. You are a storyteller."},
            {"role": "user", "content": PROMPT},
        ],
        "stream": True,
        "max_tokens": tokens,
        "temperature": 0,
    }
    started = time.perf_counter()
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        return timed(r.iter_lines(), v1_text, started)


def run_api(client: httpx.Client, tokens: int) -> Sample:
    tag = uuid.uuid4().hex[:8]
    cid = client.post(
        "/api/conversations",
        json={
            "system_prompt": f"Session {tag}. You are a storyteller.",
            "settings": {"max_tokens": tokens, "temperature": 0},
        },
    ).json()["id"]
    started = time.perf_counter()
    with client.stream("POST", f"/api/conversations/{cid}/messages", json={"content": PROMPT}) as r:
        r.raise_for_status()
        return timed(r.iter_lines(), api_text, started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="mingyan-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINGYAN_")}
    env["MINGYAN_DATA_DIR"] = str(data_dir)
    mingyan("users", "create", "bench", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    port = free_port()
    server = start_server(args.model, data_dir, port, env)
    try:
        base = f"http://127.0.0.1:{port}"
        operator = httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {SERVER_KEY}"})
        login = httpx.Client(base_url=base, timeout=60)
        r = login.post("/api/auth/login", json={"username": "bench", "password": PASSWORD})
        r.raise_for_status()
        key = login.post("/api/keys", json={"name": "bench"}, headers={"X-CSRF-Token": r.json()["csrf_token"]})
        user = httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {key.json()['key']}"})
        run_v1(operator, 16)  # warm up: load pages, first compile of every path
        run_api(operator, 16)
        samples: dict[str, list[Sample]] = {p: [] for p in PATHS}
        for rep in range(args.reps):
            for path, client in zip(PATHS, (operator, operator, user, user), strict=True):
                run = run_v1 if path.startswith("v1") else run_api
                samples[path].append(run(client, args.tokens))
            print(
                f"rep {rep + 1}: " + ", ".join(f"{p} {samples[p][-1].decode_tps:.1f} tok/s" for p in PATHS), flush=True
            )
    finally:
        server.terminate()
        server.wait(30)
    report = table(samples, args)
    print(report)
    if args.markdown:
        args.markdown.write_text(report + "\n")


def table(samples: dict[str, list[Sample]], args: argparse.Namespace) -> str:
    base_tps = statistics.median(s.decode_tps for s in samples["v1/operator"])
    base_ttft = statistics.median(s.ttft_s for s in samples["v1/operator"])
    rows = [
        f"model {args.model}, {args.tokens} tokens, {args.reps} repetitions (medians)",
        "",
        "| path | decode tok/s | ratio | TTFT | ratio | per repetition (tok/s) |",
        "|---|---|---|---|---|---|",
    ]
    for path in PATHS:
        tps = statistics.median(s.decode_tps for s in samples[path])
        ttft = statistics.median(s.ttft_s for s in samples[path])
        each = ", ".join(f"{s.decode_tps:.1f}" for s in samples[path])
        rows.append(
            f"| {path} | {tps:.1f} | {tps / base_tps:.2f} | {ttft * 1000:.0f} ms | {ttft / base_ttft:.2f} | {each} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
