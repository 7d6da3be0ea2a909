"""The three load scenarios: concurrency sweep, follow-up TTFT vs history, interleaved chats.

Each scenario talks to one `RunningServer` and returns plain dicts (JSON-ready): per-phase
summaries plus every request's record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.loadgen import (
    RequestResult,
    chat_body,
    essay_messages,
    nonce,
    percentile,
    stream_chat,
    summarize,
)
from bench.servers import RunningServer

PARAGRAPH = (
    "The old harbour town kept its records in a stone building by the water. Every spring "
    "the fishermen repaired their nets, the bakers sold bread at dawn, and the children "
    "counted the boats coming back before the evening bell rang over the quiet bay."
)
ACK = "Noted. I will keep this part of the town's story in mind."
QUESTIONS = (
    "In two sentences, what do these notes describe?",
    "Now describe the same town in winter, briefly.",
    "Which detail of the notes do you find most interesting, and why?",
    "Suggest a title for a story set in this town.",
    "Summarize everything so far in one sentence.",
)
TEMPLATE_TOKENS_PER_MESSAGE = 5
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Workload:
    max_tokens: int = 128
    temperature: float = 0.7


def token_counter(gguf: Path) -> Callable[[str], int]:
    """Count tokens with the model's own vocabulary (vocab-only load: no weights)."""
    import llama_cpp

    vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=False))


def history(target_tokens: int, count: Callable[[str], int]) -> Messages:
    """Earlier user/assistant turns (a repeated paragraph) totalling about `target_tokens`."""
    turns: Messages = []
    total, i = 0, 0
    while total < target_tokens:
        i += 1
        user = f"Note {i}: {PARAGRAPH}"
        turns += [{"role": "user", "content": user}, {"role": "assistant", "content": ACK}]
        total += count(user) + count(ACK) + 2 * TEMPLATE_TOKENS_PER_MESSAGE
    return turns


def system(tag: str) -> dict[str, str]:
    return {"role": "system", "content": f"Session {tag}. You are a helpful assistant."}


async def ask(
    client: httpx.AsyncClient, server: RunningServer, messages: Messages, max_tokens: int, temperature: float
) -> RequestResult:
    body = chat_body(server.launch.model_field, messages, max_tokens, temperature, server.launch.stream_usage)
    return await stream_chat(client, server.base_url, body)


# --- concurrency sweep -------------------------------------------------------------------


async def closed_loop(
    server: RunningServer, clients: int, reps: int, work: Workload
) -> tuple[list[RequestResult], float]:
    """`clients` concurrent clients, each sending `reps` requests back to back."""
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one_client(index: int) -> list[RequestResult]:
            out = []
            for rep in range(reps):
                messages = essay_messages(index * reps + rep, nonce())
                out.append(await ask(client, server, messages, work.max_tokens, work.temperature))
            return out

        start = time.perf_counter()
        per_client = await asyncio.gather(*(one_client(i) for i in range(clients)))
        wall = time.perf_counter() - start
    return [r for results in per_client for r in results], wall


async def run_sweep(server: RunningServer, concurrency: list[int], reps: int, work: Workload) -> list[dict]:
    phases = []
    for clients in concurrency:
        async with httpx.AsyncClient() as client:  # warm-up, not measured
            await ask(client, server, essay_messages(clients, nonce()), work.max_tokens, work.temperature)
        results, wall = await closed_loop(server, clients, reps, work)
        phases.append({"concurrency": clients, **summarize(results, wall), "records": [r.record() for r in results]})
    return phases


# --- follow-up TTFT vs history length ---------------------------------------------------


async def followup_once(
    client: httpx.AsyncClient, server: RunningServer, past: Messages, reply_tokens: int, work: Workload
) -> dict[str, RequestResult]:
    """Warm: send a conversation, then its follow-up. Cold: the same follow-up, never seen."""
    first = [system(nonce()), *past, {"role": "user", "content": QUESTIONS[0]}]
    turn1 = await ask(client, server, first, reply_tokens, work.temperature)
    follow = [*first, {"role": "assistant", "content": turn1.text}, {"role": "user", "content": QUESTIONS[1]}]
    warm = await ask(client, server, follow, work.max_tokens, work.temperature)
    cold = await ask(client, server, [system(nonce()), *follow[1:]], work.max_tokens, work.temperature)
    return {"turn1": turn1, "warm": warm, "cold": cold}


def followup_summary(length: int, runs: list[dict[str, RequestResult]]) -> dict:
    def stat(kind: str, attr: str, q: float = 50) -> float:
        values = [getattr(run[kind], attr) for run in runs]
        return percentile([float(v) for v in values if v is not None], q)

    return {
        "history_tokens": length,
        "prompt_tokens": stat("warm", "prompt_tokens"),
        "cold_ttft_p50_s": stat("cold", "ttft_s"),
        "warm_ttft_p50_s": stat("warm", "ttft_s"),
        "cold_cached_p50": stat("cold", "cached_tokens"),
        "warm_cached_p50": stat("warm", "cached_tokens"),
        "errors": sum(r.status == "error" for run in runs for r in run.values()),
        "records": [{k: r.record() for k, r in run.items()} for run in runs],
    }


async def run_followup(
    server: RunningServer, lengths: list[int], reps: int, reply_tokens: int, work: Workload, count: Callable[[str], int]
) -> list[dict]:
    rows = []
    async with httpx.AsyncClient() as client:
        await ask(client, server, essay_messages(0, nonce()), 8, work.temperature)  # warm-up
        for length in lengths:
            past = history(length, count)
            runs = [await followup_once(client, server, past, reply_tokens, work) for _ in range(reps)]
            rows.append(followup_summary(length, runs))
    return rows


# --- interleaved conversations ---------------------------------------------------------


async def run_interleave(
    server: RunningServer,
    conversations: int,
    turns: int,
    history_tokens: int,
    work: Workload,
    count: Callable[[str], int],
) -> dict:
    """`conversations` chats take turns round-robin, one request in flight at a time."""
    past = history(history_tokens, count)
    chats = [[system(nonce()), *past] for _ in range(conversations)]
    records = []
    async with httpx.AsyncClient() as client:
        await ask(client, server, essay_messages(0, nonce()), 8, work.temperature)  # warm-up
        for turn in range(turns):
            for index, chat in enumerate(chats):
                chat.append({"role": "user", "content": QUESTIONS[turn % len(QUESTIONS)]})
                result = await ask(client, server, chat, work.max_tokens, work.temperature)
                chat.append({"role": "assistant", "content": result.text})
                records.append({"conversation": index, "turn": turn, **result.record()})
    return interleave_summary(records)


def interleave_summary(records: list[dict]) -> dict:
    first = [r["ttft_s"] for r in records if r["turn"] == 0]
    later = [r for r in records if r["turn"] > 0]
    ttft = [r["ttft_s"] for r in later]
    cached = [float(r["cached_tokens"]) for r in later if r["cached_tokens"] is not None]
    return {
        "first_ttft_p50_s": percentile(first, 50),
        "followup_ttft_p50_s": percentile(ttft, 50),
        "followup_ttft_p90_s": percentile(ttft, 90),
        "followup_prompt_p50": percentile(
            [float(r["prompt_tokens"]) for r in later if r["prompt_tokens"] is not None], 50
        ),
        "followup_cached_p50": percentile(cached, 50),
        "errors": sum(r["status"] == "error" for r in records),
        "cut": sum(r["status"] == "cut" for r in records),
        "records": records,
    }
