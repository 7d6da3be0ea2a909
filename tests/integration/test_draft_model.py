"""Draft-model speculative decoding with real models: SmolLM2-135M drafting for itself (same
vocabulary, so nearly every draft is accepted) gives the same text as decoding without it, alone
and in concurrent streams; its tokens are counted in /metrics; a stream cancelled mid-reply ends
and the engine goes on; a draft model of another vocabulary is refused at start-up, naming both.

One thread per engine, as in test_speculation.py: llama.cpp's multi-token evaluation is then
bit-identical to one-token decoding, so the texts can be compared byte for byte.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from mingyan.bootstrap import draft_source, open_registry
from mingyan.config import Settings
from mingyan.engine.base import FinishReason, GenerationRequest, SamplingParams
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.draft_model import DraftSource
from mingyan.engine.llamacpp.engine import LlamaCppEngine
from mingyan.errors import ModelError
from tests.conftest import QWEN, SMOLLM, free_port, mingyan_env, start_server, stop_server
from tests.integration.test_speculation import CHATS, EDIT, metric, run, tokens
from tests.tiny_models import FAMILIES

PROMPTS = (*CHATS, "Write a short poem about the sea.")


def source(name: str) -> DraftSource:
    registry = open_registry(Settings(), progress=False)
    return DraftSource(name, lambda: registry.resolve(name).path, required=True)


def engine(*, draft: bool, n_slots: int = 1) -> LlamaCppEngine:
    entry = open_registry(Settings(), progress=False).resolve(SMOLLM)
    # Prompt lookup off: every draft here comes from the draft model.
    config = EngineConfig(
        n_ctx=2048, n_slots=n_slots, n_threads=1, cache_ram_bytes=0, cache_disk_bytes=0, speculative=False
    )
    return LlamaCppEngine(entry.path, name=SMOLLM, config=config, draft=source(SMOLLM) if draft else None)


@pytest.fixture(scope="module")
def engines():
    """(engine drafting with SmolLM2, engine without drafts), two slots each."""
    on, off = engine(draft=True, n_slots=2), engine(draft=False, n_slots=2)
    yield on, off
    on.close()
    off.close()


def greedy(tokens_: int = 120) -> SamplingParams:
    return SamplingParams(temperature=0, max_tokens=tokens_)


def test_greedy_text_is_identical_with_and_without_the_draft_model(engines):
    on, off = engines
    before = on.stats()
    for text in PROMPTS:
        drafted, done = asyncio.run(run(on, tokens(on, text), greedy()))
        plain, plain_done = asyncio.run(run(off, tokens(off, text), greedy()))
        assert drafted == plain
        assert done.usage == plain_done.usage and done.finish_reason == plain_done.finish_reason
    after = on.stats()
    drafted_n = after.model_drafted_tokens_total - before.model_drafted_tokens_total
    accepted_n = after.model_accepted_tokens_total - before.model_accepted_tokens_total
    # The same model drafts: only drafts past a reply's end are rejected.
    assert accepted_n >= 0.9 * drafted_n > 0
    assert drafted_n > 100
    assert off.stats().model_drafted_tokens_total == 0


def test_concurrent_streams_match_the_same_streams_without_the_draft_model(engines):
    on, off = engines

    async def together(eng: LlamaCppEngine):
        return await asyncio.gather(*(run(eng, tokens(eng, t), greedy(80)) for t in CHATS))

    assert [t for t, _ in asyncio.run(together(on))] == [t for t, _ in asyncio.run(together(off))]


def test_seeded_sampling_draws_the_same_text_with_and_without_the_draft_model(engines):
    # Greedy drafts are a function of the text so far; each position is still drawn from the
    # target's distribution with the same random numbers, so a seeded reply is unchanged.
    on, off = engines
    params = SamplingParams(temperature=0.8, top_p=0.95, seed=5, max_tokens=100)
    drafted, _ = asyncio.run(run(on, tokens(on, CHATS[0]), params))
    assert drafted == asyncio.run(run(off, tokens(off, CHATS[0]), params))[0]


def test_a_reply_cancelled_mid_stream_ends_and_the_engine_goes_on(engines):
    on, off = engines
    before = on.stats().cancelled_total

    async def cut_short() -> str:
        stream = on.generate(GenerationRequest(tokens(on, PROMPTS[2]), greedy(400)))
        parts = []
        async for event in stream:
            parts.append(event.text)
            if len(parts) == 3:
                break
        await stream.aclose()
        return "".join(parts)

    assert asyncio.run(cut_short())
    after, done = asyncio.run(run(on, tokens(on, CHATS[1]), greedy()))
    assert on.stats().cancelled_total == before + 1
    assert done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert after == asyncio.run(run(off, tokens(off, CHATS[1]), greedy()))[0]


def test_a_draft_model_of_another_vocabulary_is_refused_naming_both():
    entry = open_registry(Settings(), progress=False).resolve(SMOLLM)
    config = EngineConfig(n_ctx=512, n_slots=1, n_threads=1, cache_ram_bytes=0, cache_disk_bytes=0)
    with pytest.raises(ModelError, match=f"draft model {QWEN} cannot draft for {SMOLLM}: vocabulary sizes differ"):
        LlamaCppEngine(entry.path, name=SMOLLM, config=config, draft=source(QWEN))


def test_serve_refuses_a_mismatched_draft_model_at_start_up(tmp_path):
    cmd = [sys.executable, "-m", "mingyan", "serve", "--port", str(free_port()), "--model", SMOLLM]
    done = subprocess.run(
        [*cmd, "--draft-model", QWEN], env=mingyan_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert f"draft model {QWEN} cannot draft for {SMOLLM}" in done.stderr


def test_metrics_count_the_draft_models_tokens(tmp_path):
    server = start_server(tmp_path, SMOLLM, "--n-ctx", "1024", "--draft-model", SMOLLM, "--no-speculative")
    try:
        body = {"model": SMOLLM, "messages": [{"role": "user", "content": EDIT}], "temperature": 0, "max_tokens": 40}
        reply = httpx.post(server.base_url + "/chat/completions", json=body, timeout=300)
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        text = httpx.get(server.url + "/metrics").text
        drafted = metric(text, "mingyan_draft_model_tokens_total")
        accepted = metric(text, "mingyan_draft_model_accepted_tokens_total")
        assert drafted >= accepted > 0
        assert metric(text, "mingyan_draft_model_acceptance_rate") == pytest.approx(accepted / drafted)
        assert metric(text, "mingyan_draft_tokens_total") == drafted  # prompt lookup is off
    finally:
        stop_server(server)


def auto_engine(path, name: str, draft_model: str = "auto") -> LlamaCppEngine:
    settings = Settings(draft_model=draft_model)  # --draft-model auto, the default
    draft = draft_source(settings, open_registry(settings, progress=False))
    config = EngineConfig(n_ctx=256, n_slots=1, n_threads=1, cache_ram_bytes=0, cache_disk_bytes=0)
    return LlamaCppEngine(path, name=name, config=config, draft=draft)


def test_auto_skips_a_draft_larger_than_its_target_and_a_named_one_drafts_with_the_answer_unchanged(
    tiny_model_path,
):
    # The tiny qwen2 model carries the shipped Qwen2.5 tokenizer, so the shipped 0.5B could draft
    # for it; automatically it does not (the draft would be far larger than the target). Named, it
    # does: the tiny model's weights compute a fixed answer the 0.5B does not guess, so the drafts
    # are rejected and the reply is still exactly that answer.
    for draft_model, drafts in (("auto", False), ("qwen2.5-coder-0.5b-instruct", True)):
        eng = auto_engine(tiny_model_path("qwen2"), "tiny-qwen2", draft_model)
        try:
            text, done = asyncio.run(run(eng, tokens(eng, "Hello"), greedy(40)))
            assert text == FAMILIES["qwen2"].answer_text
            assert done.finish_reason is FinishReason.STOP
            assert (eng.stats().model_drafted_tokens_total > 0) is drafts, draft_model
        finally:
            eng.close()


def test_auto_does_not_draft_for_another_family():
    eng = auto_engine(open_registry(Settings(), progress=False).resolve(SMOLLM).path, SMOLLM)
    try:
        asyncio.run(run(eng, tokens(eng, CHATS[0]), greedy(30)))
        assert eng.stats().model_drafted_tokens_total == 0
    finally:
        eng.close()
