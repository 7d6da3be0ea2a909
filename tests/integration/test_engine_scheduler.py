"""The batched llama.cpp engine with the real SmolLM2 model: slots, cache, fairness, cancel."""

from __future__ import annotations

import asyncio
import time

import pytest

from mingyan.bootstrap import open_registry
from mingyan.config import Settings
from mingyan.engine.base import GenerationRequest, SamplingParams
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.engine import LlamaCppEngine
from mingyan.engine.llamacpp.prefix_cache import common_prefix
from mingyan.errors import EngineBusyError
from tests.conftest import SMOLLM

GREEDY = SamplingParams(temperature=0, max_tokens=24)
SYSTEM = "You are a careful assistant. " * 6


@pytest.fixture(scope="module")
def smollm():
    return open_registry(Settings(), progress=False).resolve(SMOLLM)


def make_engine(entry, tmp_path=None, *, sha=None, **config) -> LlamaCppEngine:
    config = {"n_ctx": 2048, "n_threads": 2, "n_slots": 2, "cache_disk_bytes": 0} | config
    if tmp_path is not None:
        config |= {"cache_dir": tmp_path, "cache_disk_bytes": 1 << 30}
    return LlamaCppEngine(entry.path, name=SMOLLM, sha256=sha or entry.sha256, config=EngineConfig(**config))


def prompt(engine, user: str, *history: str) -> tuple[int, ...]:
    messages = [{"role": "system", "content": SYSTEM}]
    for i, text in enumerate(history):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    messages.append({"role": "user", "content": user})
    return tuple(engine.tokenize(engine.chat_template.render(messages)))


async def run(engine, tokens, params=GREEDY, user=""):
    parts, last = [], None
    async for event in engine.generate(GenerationRequest(tokens, params, user=user)):
        parts.append(event.text)
        last = event
    return "".join(parts), last


def test_prefix_reuse_stops_exactly_where_two_users_diverge(smollm):
    # Bob follows Alice on one engine, and follows Carol on another. Both earlier prompts
    # share exactly the same prefix with Bob's, so if reuse stops at the first differing
    # token, nothing of Alice's secret can change Bob's answer.
    reference = make_engine(smollm, n_slots=1)
    engine = make_engine(smollm, n_slots=1)
    try:
        alice = prompt(engine, "My secret code is 4711. Please repeat my secret code.")
        carol = prompt(engine, "My secret code is 1234. Please repeat my secret code.")
        bob = prompt(engine, "My secret code is 9352. Please repeat my secret code.")
        shared = common_prefix(alice, bob)
        assert 0 < shared < len(bob) - 5 and common_prefix(carol, bob) == shared
        asyncio.run(run(reference, carol, user="carol"))
        bob_after_carol, _ = asyncio.run(run(reference, bob, user="bob"))
        asyncio.run(run(engine, alice, user="alice"))
        bob_after_alice, done = asyncio.run(run(engine, bob, user="bob"))
        assert done.usage.cached_tokens == shared  # reused up to the first differing token, no further
        assert bob_after_alice == bob_after_carol
        assert "4711" not in bob_after_alice
    finally:
        engine.close()
        reference.close()


def test_concurrent_streams_in_one_batch_match_sequential_answers(smollm):
    engine = make_engine(smollm, n_slots=4)
    try:
        prompts = [prompt(engine, f"Name {n} fruits.") for n in ("two", "three", "four", "five")]
        alone = [asyncio.run(run(engine, p))[0] for p in prompts]

        async def together():
            return await asyncio.gather(*(run(engine, p, user=f"u{i}") for i, p in enumerate(prompts)))

        results = asyncio.run(together())
        assert [text for text, _ in results] == alone
        assert all(done.finish_reason is not None for _, done in results)
        assert engine.stats().active == 0
    finally:
        engine.close()


def test_one_users_many_requests_do_not_starve_another(smollm):
    engine = make_engine(smollm, n_slots=1)
    finished: list[str] = []
    params = SamplingParams(temperature=0, max_tokens=6)

    async def ask(user, n):
        await run(engine, prompt(engine, f"Count to {n}."), params, user=user)
        finished.append(f"{user}{n}")

    async def scenario():
        tasks = [asyncio.create_task(ask("greedy", n)) for n in range(5)]
        await asyncio.sleep(0)  # all five queued first
        tasks.append(asyncio.create_task(ask("modest", 9)))
        await asyncio.gather(*tasks)

    try:
        asyncio.run(scenario())
        assert finished.index("modest9") <= 1, finished
    finally:
        engine.close()


def test_full_queue_is_refused_before_generation(smollm):
    engine = make_engine(smollm, n_slots=1, max_queue=1)
    long = SamplingParams(temperature=0.8, max_tokens=400, seed=1)

    async def scenario():
        first = engine.generate(GenerationRequest(prompt(engine, "Tell a long story."), long, user="a"))
        await first.__anext__()  # the only slot is busy now
        second = engine.generate(GenerationRequest(prompt(engine, "Another story."), long, user="b"))
        with pytest.raises(EngineBusyError) as info:
            engine.generate(GenerationRequest(prompt(engine, "A third."), long, user="c"))
        assert info.value.retry_after_s >= 1
        await first.aclose()
        await second.aclose()

    try:
        asyncio.run(scenario())
        assert engine.stats().requests_total <= 2
    finally:
        engine.close()


def test_cancelling_a_long_prefill_aborts_it(smollm):
    engine = make_engine(smollm, n_slots=1, n_batch=512)
    long_prompt = prompt(engine, "Summarize: " + "The river flows past the old mill. " * 200)
    assert len(long_prompt) > 1500

    async def scenario():
        task = asyncio.create_task(run(engine, long_prompt))
        deadline = time.monotonic() + 30
        while engine.stats().active == 0 and time.monotonic() < deadline:  # the prefill has started
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
        deadline = time.monotonic() + 30
        while engine.stats().active and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = engine.stats()
        assert stats.active == 0 and stats.cancelled_total == 1
        assert stats.prefill_tokens_total < len(long_prompt)
        assert stats.generated_tokens_total == 0
    finally:
        engine.close()


def test_conversation_state_survives_a_restart(smollm, tmp_path):
    history = ("Tell me about the moon.", "The moon orbits the earth. " * 20)
    first = make_engine(smollm, tmp_path)
    try:
        opening = prompt(first, "And the sun?", *history)
        asyncio.run(run(first, opening))
    finally:
        first.close()
    again = make_engine(smollm, tmp_path)
    try:
        follow_up = prompt(again, "And the stars?", *history, "And the sun?", "It is a star.")
        _, done = asyncio.run(run(again, follow_up))
        assert done.usage.cached_tokens >= len(opening) - 1
        assert again.stats().prefill_tokens_total == len(follow_up) - done.usage.cached_tokens
    finally:
        again.close()
    other_model = make_engine(smollm, tmp_path, sha="0" * 64)
    try:
        _, done = asyncio.run(run(other_model, follow_up))
        assert done.usage.cached_tokens == 0  # states are bound to the model's sha256
    finally:
        other_model.close()


def test_eight_conversations_on_two_slots_keep_their_caches(smollm):
    engine = make_engine(smollm, n_slots=2)
    params = SamplingParams(temperature=0, max_tokens=8)
    histories: list[list[str]] = [[f"Conversation {i}: let us talk about the number {i}."] for i in range(8)]
    previous: list[int] = []  # each conversation's prompt length at the previous turn
    try:
        for turn in range(3):
            for i, history in enumerate(histories):
                tokens = prompt(engine, history[-1], *history[:-1])
                reply, done = asyncio.run(run(engine, tokens, params, user=f"c{i}"))
                if turn > 0:
                    assert done.usage.cached_tokens >= previous[i], (turn, i)
                history += [reply, f"Turn {turn + 1}: tell me more."]
            previous = [len(prompt(engine, h[-3], *h[:-3])) for h in histories]
    finally:
        engine.close()


def test_a_repeated_prompt_reuses_its_slot_without_any_saved_state(smollm):
    engine = make_engine(smollm, n_slots=2, cache_ram_bytes=0)  # no RAM cache, no disk cache
    try:
        tokens = prompt(engine, "Tell me about the moon.")
        asyncio.run(run(engine, tokens))
        _, done = asyncio.run(run(engine, tokens))
        assert done.usage.cached_tokens == len(tokens) - 1  # all but the last prompt token
    finally:
        engine.close()


def test_closing_a_stream_never_read_cancels_its_job(smollm):
    """A client can vanish before reading the first event: closing the unread stream must stop
    the generation (not let it run to max_tokens for nobody)."""
    engine = make_engine(smollm)
    try:

        async def scenario():
            tokens = prompt(engine, "Tell me a very long story.")
            stream = engine.generate(GenerationRequest(tokens, SamplingParams(temperature=0, max_tokens=1500)))
            deadline = time.monotonic() + 30
            while engine.stats().active == 0 and time.monotonic() < deadline:  # the engine starts on it
                await asyncio.sleep(0.01)
            assert engine.stats().active == 1
            await stream.aclose()
            deadline = time.monotonic() + 5
            while engine.stats().active and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

        asyncio.run(scenario())
        stats = engine.stats()
        assert stats.active == 0 and stats.cancelled_total == 1
        assert stats.generated_tokens_total < 1000
    finally:
        engine.close()
