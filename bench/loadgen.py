"""Streaming chat-completion client and latency statistics for the load benchmarks.

One `stream_chat` call sends a streaming /v1/chat/completions request and times it:
TTFT (request sent -> first non-empty content delta), TPOT ((t_last - t_first) /
(tokens - 1)), end-to-end latency, completion tokens, and whether the stream ended
properly (a finish_reason was sent and `data: [DONE]` was seen).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import asdict, dataclass, field

import httpx

REQUEST_TIMEOUT_S = 900.0
TOPICS = (
    "the history of the printing press",
    "how lighthouses guided ships at night",
    "the water cycle and the weather",
    "how bridges are designed and built",
    "the life of honey bees in a hive",
    "how a steam locomotive works",
    "the invention of the telescope",
    "how cities deal with their waste",
    "the history of tea and the tea trade",
    "how volcanoes form and erupt",
    "the migration of birds across continents",
    "how a compiler turns code into a program",
)
ESSAY = (
    "Write a long, detailed essay about {topic}. Explain its history, how it works, the "
    "people involved and what the future may bring. Use many paragraphs and do not stop "
    "early."
)


def nonce() -> str:
    return uuid.uuid4().hex[:12]


def essay_messages(index: int, tag: str) -> list[dict[str, str]]:
    """~50 prompt tokens; the tag comes first so no two requests share a KV-cache prefix."""
    topic = TOPICS[index % len(TOPICS)]
    return [
        {"role": "system", "content": f"Session {tag}. You are a helpful writer."},
        {"role": "user", "content": ESSAY.format(topic=topic)},
    ]


@dataclass
class RequestResult:
    ttft_s: float = math.nan
    tpot_s: float = math.nan
    e2e_s: float = math.nan
    completion_tokens: int = 0
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    content_chunks: int = 0
    finish_reason: str | None = None
    done_seen: bool = False
    error: str | None = None
    tokens_from_usage: bool = False
    text: str = field(default="", repr=False)

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return "ok" if self.finish_reason and self.done_seen else "cut"

    def record(self) -> dict[str, object]:
        data = asdict(self)
        data["status"] = self.status
        data.pop("text")
        return data


def chat_body(
    model: str, messages: list[dict[str, str]], max_tokens: int, temperature: float, stream_usage: bool
) -> dict[str, object]:
    body: dict[str, object] = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
    }
    if stream_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def read_usage(obj: dict, result: RequestResult) -> None:
    usage = obj.get("usage")
    if usage:
        result.completion_tokens = int(usage.get("completion_tokens") or 0)
        result.tokens_from_usage = True
        result.prompt_tokens = usage.get("prompt_tokens")
        details = usage.get("prompt_tokens_details") or {}
        if details.get("cached_tokens") is not None:
            result.cached_tokens = details["cached_tokens"]
    timings = obj.get("timings")  # llama-server: tokens reused from its prompt cache
    if timings and result.cached_tokens is None and "cache_n" in timings:
        result.cached_tokens = timings["cache_n"]


def read_event(obj: dict, result: RequestResult, marks: dict[str, float], parts: list[str]) -> None:
    if "error" in obj:
        result.error = json.dumps(obj["error"])[:300]
        return
    for choice in obj.get("choices") or []:
        content = (choice.get("delta") or {}).get("content")
        if content:
            now = time.perf_counter()
            marks.setdefault("first", now)
            marks["last"] = now
            result.content_chunks += 1
            parts.append(content)
        if choice.get("finish_reason"):
            result.finish_reason = choice["finish_reason"]
    read_usage(obj, result)


async def read_stream(response: httpx.Response, result: RequestResult, marks: dict[str, float]) -> None:
    parts: list[str] = []
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            result.done_seen = True
            break
        read_event(json.loads(payload), result, marks, parts)
    result.text = "".join(parts)


def finish_timing(result: RequestResult, marks: dict[str, float]) -> None:
    start = marks["start"]
    result.e2e_s = time.perf_counter() - start
    if not result.tokens_from_usage:
        result.completion_tokens = result.content_chunks  # approximation: one token per chunk
    if "first" in marks:
        result.ttft_s = marks["first"] - start
        if result.completion_tokens > 1:
            result.tpot_s = (marks["last"] - marks["first"]) / (result.completion_tokens - 1)


async def stream_chat(client: httpx.AsyncClient, base_url: str, body: dict[str, object]) -> RequestResult:
    """Send one streaming chat completion and time it. Never raises for HTTP/stream errors."""
    result = RequestResult()
    marks = {"start": time.perf_counter()}
    try:
        async with client.stream(
            "POST", f"{base_url}/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S
        ) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                result.error = f"HTTP {response.status_code}: {text[:300]}"
            else:
                await read_stream(response, result, marks)
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    finish_timing(result, marks)
    return result


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of the finite values; nan if none."""
    data = sorted(v for v in values if not math.isnan(v))
    if not data:
        return math.nan
    rank = (len(data) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summarize(results: list[RequestResult], wall_s: float) -> dict[str, float | int]:
    """p50/p90/p99 TTFT and TPOT, aggregate output tokens/s, and counts by status."""
    ttft = [r.ttft_s for r in results]
    tpot = [r.tpot_s for r in results]
    tokens = sum(r.completion_tokens for r in results)
    summary: dict[str, float | int] = {
        "requests": len(results),
        "wall_s": wall_s,
        "completion_tokens": tokens,
        "output_tok_s": tokens / wall_s if wall_s > 0 else math.nan,
    }
    for q in (50, 90, 99):
        summary[f"ttft_p{q}_s"] = percentile(ttft, q)
        summary[f"tpot_p{q}_s"] = percentile(tpot, q)
    summary["e2e_p50_s"] = percentile([r.e2e_s for r in results], 50)
    summary["mean_tokens"] = tokens / len(results) if results else 0
    summary["ok"] = sum(r.status == "ok" for r in results)
    summary["cut"] = sum(r.status == "cut" for r in results)
    summary["errors"] = sum(r.status == "error" for r in results)
    return summary
