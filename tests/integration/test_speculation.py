"""Prompt-lookup speculative decoding with the real models: the same text with and without it,
stop strings inside accepted drafts, the KV cache after rolled-back drafts, and /metrics.

The engines here run on one thread. With two or more, llama.cpp's one-token decode rounds
differently from its multi-token evaluation once a sequence passes 256 KV cells (measured: up to
0.8 in a logit on SmolLM2, also without speculation between a prefilled and a decoded token);
on one thread both are bit-identical, so these tests can demand byte-identical text. See
docs/speculative.md.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from mingyan.bootstrap import open_registry
from mingyan.config import Settings
from mingyan.engine.base import GenerationRequest, SamplingParams
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.engine import LlamaCppEngine
from tests.conftest import QWEN, SMOLLM

SOURCE = "\n".join(
    f"def total_{i}(values, scale):\n    result = 0\n    for value in values:\n"
    f"        result += value * scale + {i}\n    return result\n"
    for i in range(5)
)
EDIT = (
    "Rename the parameter `values` to `items` (and `value` to `item`) everywhere in this file. "
    f"Return the whole file, nothing else.\n\n```python\n{SOURCE}```"
)
CHATS = ("Name three colours.", "What is the capital of France? Answer in one sentence.")
TOKENS = {SMOLLM: 200, QWEN: 240}


def engine(name: str, *, speculative: bool, n_slots: int = 1, ram: int = 0) -> LlamaCppEngine:
    entry = open_registry(Settings(), progress=False).resolve(name)
    config = EngineConfig(
        n_ctx=2048,
        n_slots=n_slots,
        n_threads=1,
        cache_ram_bytes=ram,
        cache_disk_bytes=0,
        speculative=speculative,
    )
    return LlamaCppEngine(entry.path, name=name, sha256=entry.sha256, config=config)


def tokens(eng: LlamaCppEngine, *turns: str) -> tuple[int, ...]:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return tuple(eng.tokenize(eng.chat_template.render(messages)))


async def run(eng: LlamaCppEngine, prompt: tuple[int, ...], params: SamplingParams):
    parts, last = [], None
    async for event in eng.generate(GenerationRequest(prompt, params)):
        parts.append(event.text)
        last = event
    return "".join(parts), last


def greedy(name: str, **extra) -> SamplingParams:
    return SamplingParams(temperature=0, max_tokens=TOKENS[name], **extra)


@pytest.fixture(scope="module", params=[SMOLLM, QWEN])
def pair(request):
    """(model name, engine with speculation, engine without), one of each per model."""
    on, off = engine(request.param, speculative=True), engine(request.param, speculative=False)
    yield request.param, on, off
    on.close()
    off.close()


def test_greedy_text_is_byte_identical_with_and_without_speculation(pair):
    name, on, off = pair
    for text in (EDIT, *CHATS):
        before = on.stats()
        with_drafts, done = asyncio.run(run(on, tokens(on, text), greedy(name)))
        plain, plain_done = asyncio.run(run(off, tokens(off, text), greedy(name)))
        assert with_drafts == plain
        assert done.usage == plain_done.usage and done.finish_reason == plain_done.finish_reason
        if text is EDIT:  # the reply quotes the file: drafts are proposed and accepted
            assert on.stats().accepted_tokens_total - before.accepted_tokens_total > 20
    assert off.stats().drafted_tokens_total == 0


def test_seeded_sampling_draws_the_same_text_with_and_without_speculation(pair):
    # Each position is drawn from the model's own distribution, with the same random numbers in
    # the same order, accepted draft or not: the output distribution is unchanged.
    name, on, off = pair
    params = SamplingParams(temperature=0.8, top_p=0.95, seed=11, max_tokens=TOKENS[name])
    with_drafts, _ = asyncio.run(run(on, tokens(on, EDIT), params))
    plain, _ = asyncio.run(run(off, tokens(off, EDIT), params))
    assert with_drafts == plain


def test_a_stop_string_inside_an_accepted_draft_stops_exactly_there(pair):
    name, on, off = pair
    full, _ = asyncio.run(run(off, tokens(off, EDIT), greedy(name)))
    # Deep in the copied file: "def total_4(" and what follows it, copied from the prompt (and,
    # for a model that repeats itself, from its own reply), so it arrives in accepted drafts.
    start = full.find("def total_4(")
    assert start > 0, full
    stop = full[start : start + 24]
    before = on.stats().accepted_tokens_total
    text, done = asyncio.run(run(on, tokens(on, EDIT), greedy(name, stop=(stop,))))
    assert text == full[:start]
    assert done.finish_reason.value == "stop"
    assert on.stats().accepted_tokens_total - before > 20


def test_a_follow_up_after_rolled_back_drafts_reuses_the_right_prefix():
    on = engine(SMOLLM, speculative=True, ram=256 << 20)
    cold = engine(SMOLLM, speculative=False)
    try:
        first, _ = asyncio.run(run(on, tokens(on, EDIT), greedy(SMOLLM)))
        stats = on.stats()
        assert stats.drafted_tokens_total > stats.accepted_tokens_total > 0  # drafts were rejected
        follow = "Now rename `items` to `entries` and return the file again."
        again, done = asyncio.run(run(on, tokens(on, EDIT, first, follow), greedy(SMOLLM)))
        reference, _ = asyncio.run(run(cold, tokens(cold, EDIT, first, follow), greedy(SMOLLM)))
        assert done.usage.cached_tokens >= len(tokens(on, EDIT)) - 1
        assert again == reference
    finally:
        on.close()
        cold.close()


def test_concurrent_streams_with_drafts_match_the_same_streams_without():
    # Three streams batched together, with and without drafts (all admitted at once, so both
    # engines run the same prefill). Compared with each other, not with each stream alone:
    # llama.cpp's multi-sequence batches themselves round differently from a lone sequence.
    short_edit = EDIT.split("def total_2")[0] + "```"
    other_edit = short_edit.replace("`values` to `items`", "`scale` to `factor`")
    params = SamplingParams(temperature=0, max_tokens=100)
    on = engine(SMOLLM, speculative=True, n_slots=3)
    off = engine(SMOLLM, speculative=False, n_slots=3)
    try:
        prompts = [tokens(on, text) for text in (short_edit, other_edit, CHATS[0])]

        async def together(eng: LlamaCppEngine):
            return await asyncio.gather(*(run(eng, p, params) for p in prompts))

        with_drafts = [text for text, _ in asyncio.run(together(on))]
        plain = [text for text, _ in asyncio.run(together(off))]
        assert with_drafts == plain
        assert on.stats().accepted_tokens_total > 0
    finally:
        on.close()
        off.close()


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def test_metrics_show_drafted_and_accepted_tokens(smollm_server, client):
    reply = client.chat.completions.create(
        model=SMOLLM,
        messages=[{"role": "user", "content": EDIT}],
        temperature=0,
        max_tokens=120,
    )
    assert reply.choices[0].message.content
    text = httpx.get(smollm_server.url + "/metrics").text
    drafted = metric(text, "mingyan_draft_tokens_total")
    accepted = metric(text, "mingyan_draft_accepted_tokens_total")
    assert drafted >= accepted > 0
    assert metric(text, "mingyan_draft_acceptance_rate") == pytest.approx(accepted / drafted)
