"""Soak: a mixed, bounded load against a real `mingyan serve` for a given time, then a check of
every reply the clients saw against the database.

    python bench/soak.py --duration 300 --users 4 [--database-url URL] [--json report.json]

It creates the accounts, starts the server (its own data directory), and runs one client per
user, each signed in with its own API key, looping over: /v1 streams, stored-conversation replies
(new, edited, regenerated), searches, exports, clients that disconnect mid-reply and slow
readers. Then it waits for the replies still running, stops the server (SIGTERM, which must exit
0), and checks that each reply a client saw is in the database once, with the status and text the
client saw (a reply whose client left must be `complete`), and that no reply is left `streaming`.

Exits 1 on a lost or duplicated message, a wrong status or text, any 5xx answer, or RSS growth
after warm-up over 5 %; prints (and with --json writes) errors, p50/p99 latency per action and
RSS over time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

PASSWORD = "soak-password-1"
WORDS = ["river", "长城", "Python", "茶", "mountain", "北京", "music", "雨"]
MAX_RSS_GROWTH = 0.05
WARMUP_SHARE = 0.25  # the first quarter of the RSS samples is warm-up (caches and pools filling)


@dataclass
class Expected:
    """A stored reply a client started: what it saw (None: it left before the end)."""

    message_id: str
    status: str | None = None
    content: str | None = None


@dataclass
class Report:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)
    server_errors: int = 0
    replies: list[Expected] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, KiB)

    def took(self, action: str, seconds: float) -> None:
        self.latencies.setdefault(action, []).append(seconds)

    def failed(self, action: str, why: str) -> None:
        self.errors[f"{action}: {why}"] += 1


# ---- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mingyan(*args: str, data_dir: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINGYAN_")} | {"MINGYAN_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "mingyan", *args], env=env, check=True, **kwargs)


def start_server(args: argparse.Namespace, data_dir: Path, db_url: str, port: int) -> subprocess.Popen:
    for i in range(args.users):
        mingyan(
            "users",
            "create",
            f"soak{i}",
            "--password-stdin",
            "--database-url",
            db_url,
            data_dir=data_dir,
            input=PASSWORD + "\n",
            text=True,
            capture_output=True,
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINGYAN_")} | {"MINGYAN_DATA_DIR": str(data_dir)}
    cmd = [
        sys.executable,
        "-m",
        "mingyan",
        "serve",
        "--port",
        str(port),
        "--model",
        args.model,
        "--database-url",
        db_url,
        "--n-ctx",
        "2048",
        "--no-auto-titles",
        "--quota-requests-per-minute",
        "0",
        "--quota-concurrent-streams",
        "0",
        "--stream-buffer-kb",
        "64",
        "--cache-ram-mb",
        "32",  # full within the warm-up: RSS growth after it means a leak
        *args.server_args,
    ]
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: see {data_dir / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def sample_rss(pid: int, report: Report, started: float, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        report.rss.append((round(time.monotonic() - started, 1), rss_kib(pid)))
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass


# ---- one user ---------------------------------------------------------------------------------


class User:
    def __init__(self, base: str, index: int, report: Report, rng: random.Random, max_tokens: int) -> None:
        self.base, self.name, self.report, self.rng = base, f"soak{index}", report, rng
        self.max_tokens = max_tokens
        self.http: httpx.AsyncClient | None = None
        self.conversations: list[str] = []
        self.turns: list[tuple[str, str, str]] = []  # (conversation, user message, assistant message)

    async def sign_in(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as web:
            r = await web.post("/api/auth/login", json={"username": self.name, "password": PASSWORD})
            r.raise_for_status()
            csrf = web.cookies.get("mingyan_csrf") or ""
            r = await web.post("/api/keys", json={"name": "soak"}, headers={"X-CSRF-Token": csrf})
            r.raise_for_status()
            key = r.json()["key"]
        self.http = httpx.AsyncClient(base_url=self.base, timeout=300, headers={"Authorization": f"Bearer {key}"})

    async def run(self, deadline: float) -> None:
        actions = [
            (self.v1_stream, 30),
            (self.send, 25),
            (self.edit, 6),
            (self.regenerate, 6),
            (self.search, 10),
            (self.export, 5),
            (self.leave_mid_reply, 10),
            (self.slow_reader, 8),
        ]
        while time.monotonic() < deadline:
            action = self.rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
            started = time.monotonic()
            try:
                ok = await action()
            except httpx.HTTPError as exc:
                self.report.failed(action.__name__, type(exc).__name__)
                continue
            if ok:
                self.report.took(action.__name__, time.monotonic() - started)

    def check(self, action: str, response: httpx.Response) -> bool:
        if response.status_code >= 500:
            self.report.server_errors += 1
        if response.status_code >= 400:
            self.report.failed(action, f"HTTP {response.status_code}")
            return False
        return True

    def prompt(self) -> str:
        return f"Write two sentences about {self.rng.choice(WORDS)}."

    async def v1_stream(self) -> bool:
        body = {"messages": [{"role": "user", "content": self.prompt()}], "stream": True, "max_tokens": self.max_tokens}
        async with self.http.stream("POST", "/v1/chat/completions", json=body) as r:
            if not self.check("v1_stream", r):
                return False
            finish = None
            async for event in sse(r):
                if "error" in event:
                    self.report.failed("v1_stream", event["error"].get("code") or "error event")
                    return False
                for choice in event.get("choices", []):
                    finish = choice.get("finish_reason") or finish
        if finish not in ("stop", "length"):
            self.report.failed("v1_stream", f"finish_reason {finish}")
        return True

    async def conversation(self) -> str:
        if not self.conversations or self.rng.random() < 0.3:
            r = await self.http.post("/api/conversations", json={"settings": {"max_tokens": self.max_tokens}})
            if self.check("create_conversation", r):
                self.conversations.append(r.json()["id"])
        return self.rng.choice(self.conversations)

    async def stored_reply(
        self, action: str, path: str, body: dict, cid: str, *, leave_after: int | None = None, pause_s: float = 0.0
    ) -> bool:
        """Stream a stored reply; record what was seen (or that the client left)."""
        async with self.http.stream("POST", path, json=body) as r:
            if not self.check(action, r):
                return False
            expected, seen, user_id = None, "", None
            async for event in sse(r):
                if event.get("type") == "start":
                    expected = Expected(event["message"]["id"])
                    user_id = (event.get("user_message") or {}).get("id")
                    self.report.replies.append(expected)
                elif event.get("type") in ("snapshot", "delta"):
                    seen = event["text"] if event["type"] == "snapshot" else seen + event["text"]
                    if leave_after is not None and len(seen) >= leave_after:
                        return True  # the client leaves; the reply must still be saved, complete
                    await asyncio.sleep(pause_s)
                elif event.get("type") == "done" and expected is not None:
                    message = event["message"]
                    expected.status, expected.content = message["status"], seen
                    if message["content"] != seen:
                        self.report.failed(action, "done message differs from the streamed text")
                elif event.get("type") == "error":
                    self.report.failed(action, event.get("error", {}).get("code") or "error event")
        if expected is None or expected.status is None:
            self.report.failed(action, "stream ended without start/done")
            return False
        if user_id is not None:
            self.turns.append((cid, user_id, expected.message_id))
        return True

    async def send(self, **kwargs) -> bool:
        cid = await self.conversation()
        path = f"/api/conversations/{cid}/messages"
        return await self.stored_reply("send", path, {"content": self.prompt()}, cid, **kwargs)

    async def edit(self) -> bool:
        if not self.turns:
            return await self.send()
        cid, user_id, _ = self.rng.choice(self.turns)
        path = f"/api/conversations/{cid}/messages/{user_id}/edit"
        return await self.stored_reply("edit", path, {"content": self.prompt()}, cid)

    async def regenerate(self) -> bool:
        if not self.turns:
            return await self.send()
        cid, _, assistant_id = self.rng.choice(self.turns)
        path = f"/api/conversations/{cid}/messages/{assistant_id}/regenerate"
        return await self.stored_reply("regenerate", path, {}, cid)

    async def leave_mid_reply(self) -> bool:
        cid = await self.conversation()
        path = f"/api/conversations/{cid}/messages"
        ok = await self.stored_reply("leave_mid_reply", path, {"content": self.prompt()}, cid, leave_after=5)
        # Its reply goes on server-side: leave that conversation alone (a new turn would be a 409).
        self.conversations = [c for c in self.conversations if c != cid]
        self.turns = [t for t in self.turns if t[0] != cid]
        return ok

    async def slow_reader(self) -> bool:
        return await self.send(pause_s=0.05)

    async def search(self) -> bool:
        r = await self.http.get("/api/search", params={"q": self.rng.choice(WORDS)})
        return self.check("search", r)

    async def export(self) -> bool:
        r = await self.http.get("/api/export")
        return self.check("export", r)


async def sse(response: httpx.Response):
    async for line in response.aiter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


# ---- the run and the checks ------------------------------------------------------------------


async def drive(args: argparse.Namespace, base: str, pid: int, report: Report) -> None:
    rng = random.Random(args.seed)
    users = [User(base, i, report, random.Random(rng.random()), args.max_tokens) for i in range(args.users)]
    for user in users:
        await user.sign_in()
    started = time.monotonic()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, report, started, args.rss_every, stop))
    await asyncio.gather(*(user.run(started + args.duration) for user in users))
    await wait_until_idle(users[0].http)
    stop.set()
    await sampler
    for user in users:
        await user.http.aclose()


async def wait_until_idle(http: httpx.AsyncClient, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = (await http.get("/health")).json()
        if health["active_requests"] == 0 and health["queued_requests"] == 0:
            return
        await asyncio.sleep(0.5)


def check_database(db_url: str, report: Report) -> dict[str, int]:
    """Every reply a client started: there once, with what the client saw; none left streaming."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT id, status, content FROM messages WHERE role = 'assistant'")).all()
    finally:
        engine.dispose()
    stored = {row.id: row for row in rows}
    counts = Counter(row.id for row in rows)
    lost = sum(1 for e in report.replies if e.message_id not in stored)
    duplicated = sum(1 for n in counts.values() if n > 1) + (len(rows) - len(stored))
    extra = len(stored) - len({e.message_id for e in report.replies})
    streaming = sum(1 for row in rows if row.status == "streaming")
    wrong = 0
    examples: list[dict[str, object]] = []  # the first few, to tell what went wrong
    for e in report.replies:
        row = stored.get(e.message_id)
        if row is None:
            continue
        want_status = e.status or "complete"  # a client that left: the reply still ran to its end
        if row.status != want_status or (e.content is not None and row.content != e.content):
            wrong += 1
            if len(examples) < 5:
                examples.append(
                    {
                        "message_id": e.message_id,
                        "status": [want_status, row.status],
                        "seen": e.content,
                        "stored": row.content,
                    }
                )
    if examples:
        print("wrong replies (client saw / database holds):", json.dumps(examples, ensure_ascii=False, indent=1))
    return {
        "replies": len(report.replies),
        "lost": lost,
        "duplicated": duplicated,
        "unexpected": extra,
        "left_streaming": streaming,
        "wrong": wrong,
    }


def rss_growth(samples: list[tuple[float, int]], warmup_share: float = WARMUP_SHARE) -> float:
    """Growth of the median RSS of the last fifth of the run over the fifth right after warm-up."""
    after = [kib for _, kib in samples[int(len(samples) * warmup_share) :]]
    if len(after) < 5:
        return 0.0
    window = max(1, len(after) // 5)
    first, last = statistics.median(after[:window]), statistics.median(after[-window:])
    return (last - first) / first


def percentiles(latencies: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    out = {}
    for action, values in sorted(latencies.items()):
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        out[action] = {"n": len(values), "p50_s": round(statistics.median(ordered), 3), "p99_s": round(p99, 3)}
    return out


def summarize(report: Report, checks: dict[str, int], exit_code: int) -> tuple[dict, list[str]]:
    growth = rss_growth(report.rss)
    summary = {
        "checks": checks,
        "server_errors_5xx": report.server_errors,
        "errors": dict(report.errors),
        "latency": percentiles(report.latencies),
        "rss_growth_after_warmup": round(growth, 4),
        "rss_kib": report.rss,
        "server_exit_code": exit_code,
    }
    problems = [
        f"{name}: {checks[name]}"
        for name in ("lost", "duplicated", "unexpected", "left_streaming", "wrong")
        if checks[name]
    ]
    if report.server_errors:
        problems.append(f"{report.server_errors} answers with status 5xx")
    if growth > MAX_RSS_GROWTH:
        problems.append(f"RSS grew {growth:.1%} after warm-up (limit {MAX_RSS_GROWTH:.0%})")
    if exit_code != 0:
        problems.append(f"the server exited with {exit_code} on SIGTERM")
    return summary, problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--max-tokens", type=int, default=48, help="per reply")
    parser.add_argument("--database-url", help="default: SQLite in a fresh data directory")
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-every", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument(
        "--server-arg",
        dest="server_args",
        action="append",
        default=[],
        help="extra `mingyan serve` argument (repeatable), e.g. --server-arg=--n-threads=1",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="mingyan-soak-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    db_url = args.database_url or f"sqlite:///{data_dir / 'mingyan.db'}"
    port = free_port()
    server = start_server(args, data_dir, db_url, port)
    report = Report()
    try:
        asyncio.run(drive(args, f"http://127.0.0.1:{port}", server.pid, report))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            exit_code = server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_code = server.wait()
    summary, problems = summarize(report, check_database(db_url, report), exit_code)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    shown = {k: v for k, v in summary.items() if k != "rss_kib"}
    shown["rss_kib_first_last"] = [report.rss[0], report.rss[-1]] if report.rss else []
    print(json.dumps(shown, indent=1, ensure_ascii=False))
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
