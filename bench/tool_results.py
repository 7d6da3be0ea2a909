"""Does the model answer with a tool's result? Prompt renderings and decoding policies side by side.

Each case is a conversation that already holds a user question, the assistant's call and the
tool's result (Chinese and English; weather, currency, stocks, orders, flights, arithmetic, ...;
values a model cannot guess). For each variant the next assistant turn is generated greedily
and with a few seeds at the default temperature; a reply counts when it is text (not a call)
holding the result's value. Variants:

  official+auto     the family's own rendering (Qwen2.5's template), the tool still offered
                    under `auto` (what /v1 does for a client's follow-up)
  official+prose    the same prompt, calls not allowed: only prose (what a policy that forbids
                    repeating an answered call leaves when the repeat is the model's choice)
  official,no tools the family's rendering of the calls and results, no tools offered (the tool
                    loop's last step before this change)
  restated          the results restated in the user's turn with an instruction to answer from
                    them, no tools (mingyan.chat.tool_answer; the tool loop's answer step)
  restated+auto     the same, with the tool still offered under `auto`

`--auto N` instead measures `tool_choice: auto` on "北京今天天气怎么样？" with the weather tool over
seeds 1..N at the default temperature: how many replies are calls.

    python bench/tool_results.py [--model qwen2.5-coder-0.5b-instruct] [--seeds 3] [--variants a,b]
                                 [--auto 20] [--threads 2] [--markdown PATH]

One in-process engine with four slots; figures depend on the model, not the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mingyan.bootstrap import open_registry
from mingyan.chat.service import ChatService, collect
from mingyan.chat.tool_answer import answer_messages
from mingyan.chat.tool_calling import ReplyPlan, finish, plan_reply
from mingyan.chat.tool_repeat import PROSE
from mingyan.config import Settings
from mingyan.engine.base import SamplingParams
from mingyan.engine.llamacpp.engine import EngineConfig, LlamaCppEngine
from mingyan.formats.tool_calls import ToolRequest, ToolSpec


@dataclass(frozen=True)
class Case:
    question: str
    tool: ToolSpec
    arguments: dict[str, Any]
    result: str
    values: tuple[str, ...]  # the reply counts when it holds one of these (case-insensitive)


def spec(name: str, description: str, **props: str) -> ToolSpec:
    properties = {k: {"type": "string", "description": v} for k, v in props.items()}
    return ToolSpec(name, description, {"type": "object", "properties": properties, "required": list(props)})


WEATHER = spec("get_weather", "获取指定城市的当前天气 / Get the current weather of a city", city="城市名 / city name")
CASES = (
    Case("北京今天天气怎么样？", WEATHER, {"city": "北京"}, '{"temperature_c": 23, "condition": "晴"}', ("23",)),
    Case(
        "What's the weather like in Tokyo?",
        WEATHER,
        {"city": "Tokyo"},
        "Tokyo: light rain, 14 C, humidity 82%",
        ("14",),
    ),
    Case(
        "100美元等于多少人民币？",
        spec("convert_currency", "货币换算 / Convert currencies", amount="金额", pair="如 USD/CNY"),
        {"amount": "100", "pair": "USD/CNY"},
        '{"result": 718.43, "currency": "CNY"}',
        ("718",),
    ),
    Case(
        "Convert 250 euros to US dollars.",
        spec("convert_currency", "Convert currencies", amount="amount", pair="EUR/USD"),
        {"amount": "250", "pair": "EUR/USD"},
        "271.35 USD",
        ("271.35",),
    ),
    Case(
        "腾讯现在的股价是多少？",
        spec("get_stock_price", "查询股票价格 / Stock price", symbol="代码"),
        {"symbol": "0700.HK"},
        '{"symbol": "0700.HK", "price": 412.6, "currency": "HKD"}',
        ("412.6",),
    ),
    Case(
        "Where is my order A1043?",
        spec("get_order_status", "Look up an order", order_id="order id"),
        {"order_id": "A1043"},
        '{"status": "shipped", "carrier": "DHL", "eta": "2026-12-07"}',
        ("12-07", "december 7", "dec 7", "7 december"),
    ),
    Case(
        "明天北京到上海最早的航班是几点？",
        spec("search_flights", "查询航班 / Search flights", origin="出发", destination="到达"),
        {"origin": "北京", "destination": "上海"},
        "CA1501 07:35 首都机场 → 虹桥机场",
        ("7:35", "CA1501", "7点35"),
    ),
    Case(
        "What is 37 times 48?",
        spec("calculator", "Evaluate an arithmetic expression", expression="expression"),
        {"expression": "37*48"},
        "1776",
        ("1776", "1,776"),
    ),
    Case(
        "深圳有多少人口？",
        spec("search_wiki", "搜索百科 / Search an encyclopedia", query="关键词"),
        {"query": "深圳 人口"},
        "深圳市2023年末常住人口1779.01万人。",
        ("1779",),
    ),
    Case(
        "Who is on call for the payments team this week?",
        spec("get_oncall", "Who is on call", team="team"),
        {"team": "payments"},
        '{"team": "payments", "on_call": "Priya Raman", "until": "Friday"}',
        ("priya",),
    ),
    Case(
        "我的快递SF1234567到哪了？",
        spec("track_package", "查询快递 / Track a parcel", tracking_no="单号"),
        {"tracking_no": "SF1234567"},
        '{"location": "杭州转运中心", "updated": "12月3日 09:12"}',
        ("杭州",),
    ),
    Case(
        "明天下午的项目会议在哪个会议室？",
        spec("get_calendar", "查询日程 / Calendar", date="日期"),
        {"date": "明天"},
        '{"title": "项目会议", "time": "14:00", "room": "B-512"}',
        ("b-512", "b512"),
    ),
)
VARIANTS = ("official+auto", "official+prose", "official,no tools", "restated", "restated+auto")


def conversation(case: Case) -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": case.tool.name,
            "arguments": json.dumps(case.arguments, ensure_ascii=False)}}  # fmt: skip
    return [
        {"role": "user", "content": case.question},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": case.result},
    ]


def prompt(variant: str, case: Case, family: str | None) -> tuple[list[dict[str, Any]], ReplyPlan]:
    messages = conversation(case)
    tools = ToolRequest((case.tool,))
    if variant.startswith("restated"):
        messages = answer_messages(messages)
    plan = plan_reply(family, tools if variant.endswith("auto") or variant == "official+prose" else None, None)
    if variant == "official+prose":
        plan = replace(plan, constraint=PROSE)
    return messages, plan


def verdict(case: Case, plan: ReplyPlan, text: str) -> str:
    reply = finish(plan, text)
    if reply.calls:
        return "call"
    content = (reply.content or "").lower()
    if any(v in content for v in case.values):
        return "value"
    if "<tool_call>" in content or content.lstrip().startswith("{"):
        return "call as text"
    return "other"


async def one(chat: ChatService, variant: str, case: Case, seed: int | None, tokens: int) -> tuple[str, str]:
    messages, plan = prompt(variant, case, chat.engine.info.family)
    sampling = SamplingParams(temperature=0.0 if seed is None else 0.7, seed=seed, max_tokens=tokens)
    done = await collect(chat.stream(await chat.chat_request(messages, sampling, plan=plan)))
    return verdict(case, plan, done.text), done.text


async def measure(chat: ChatService, variants: list[str], seeds: list[int | None], tokens: int) -> dict:
    jobs = [(v, c, s) for v in variants for c in CASES for s in seeds]
    gate = asyncio.Semaphore(4)

    async def run(job: tuple[str, Case, int | None]) -> tuple[str, str]:
        async with gate:
            return await one(chat, job[0], job[1], job[2], tokens)

    outcomes = await asyncio.gather(*(run(j) for j in jobs))
    table: dict[str, dict[str, Counter]] = {v: {"greedy": Counter(), "seeded": Counter()} for v in variants}
    for (variant, case, seed), (kind, text) in zip(jobs, outcomes, strict=True):
        table[variant]["greedy" if seed is None else "seeded"][kind] += 1
        print(f"{variant:18} seed={seed} {kind:12} {case.question[:24]!r} -> {text[:90]!r}", flush=True)
    return table


async def auto_calls(chat: ChatService, n: int) -> Counter:
    plan = plan_reply(chat.engine.info.family, ToolRequest((WEATHER,)), None)
    messages = [{"role": "user", "content": "北京今天天气怎么样？"}]
    counts: Counter = Counter()
    for seed in range(1, n + 1):
        request = await chat.chat_request(
            messages, SamplingParams(temperature=0.7, seed=seed, max_tokens=96), plan=plan
        )
        done = await collect(chat.stream(request))
        kind = "call" if finish(plan, done.text).calls else "text"
        counts[kind] += 1
        print(f"auto seed={seed} {kind}: {done.text[:100]!r}", flush=True)
    return counts


def markdown(table: dict, runs: int) -> str:
    lines = [
        f"| variant | greedy: value / {len(CASES)} | seeded: value / {len(CASES) * runs} | seeded: other outcomes |",
        "|---|---|---|---|",
    ]
    for variant, by in table.items():
        rest = ", ".join(f"{k} {n}" for k, n in sorted(by["seeded"].items()) if k != "value")
        lines.append(f"| {variant} | {by['greedy']['value']} | {by['seeded']['value']} | {rest} |")
    return "\n".join(lines)


def open_engine(model: str, threads: int) -> LlamaCppEngine:
    entry = open_registry(Settings(), progress=False).resolve(model)
    config = EngineConfig(n_ctx=2048, n_threads=threads, n_slots=4, cache_disk_bytes=0)
    return LlamaCppEngine(entry.path, name=model, sha256=entry.sha256, config=config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--seeds", type=int, default=3, help="seeded runs per case at temperature 0.7 (seeds 1..N)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--tokens", type=int, default=80)
    parser.add_argument("--auto", type=int, default=0, help="measure tool_choice auto over seeds 1..N instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    engine = open_engine(args.model, args.threads)
    chat = ChatService(engine)
    try:
        if args.auto:
            text = f"auto, seeds 1-{args.auto}: {dict(asyncio.run(auto_calls(chat, args.auto)))}"
        else:
            seeds: list[int | None] = [None, *range(1, args.seeds + 1)]
            text = markdown(asyncio.run(measure(chat, args.variants.split(","), seeds, args.tokens)), args.seeds)
    finally:
        engine.close()
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
