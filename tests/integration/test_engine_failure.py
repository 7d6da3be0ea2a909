"""A decode step that fails (injected through the engine's native context class), with SmolLM2.

The request in the failed step ends with an error, the engine goes on serving the request that
waited and those that come after, and /health says what happened.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi.testclient import TestClient

from mingyan.api.app import create_app
from mingyan.bootstrap import open_registry
from mingyan.config import Settings
from mingyan.engine.base import GenerationRequest, SamplingParams
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.engine import LlamaCppEngine
from mingyan.engine.llamacpp.native import NativeContext
from mingyan.errors import EngineError
from tests.conftest import SMOLLM

GREEDY = SamplingParams(temperature=0, max_tokens=24)


def failing_context(armed: threading.Event) -> type[NativeContext]:
    class FailsOnceWhenArmed(NativeContext):
        def decode_batch(self) -> int:
            if armed.is_set():
                armed.clear()
                raise RuntimeError("injected decode failure")
            return super().decode_batch()

    return FailsOnceWhenArmed


@pytest.fixture(scope="module")
def smollm():
    return open_registry(Settings(), progress=False).resolve(SMOLLM)


async def generate(engine, text: str, *, arm: threading.Event | None = None) -> str:
    tokens = tuple(engine.tokenize(engine.chat_template.render([{"role": "user", "content": text}])))
    parts = []
    async for event in engine.generate(GenerationRequest(tokens, GREEDY)):
        parts.append(event.text)
        if arm is not None and len(parts) == 3:
            arm.set()  # the next decode step fails
    return "".join(parts)


def test_a_failed_decode_step_fails_its_request_and_the_engine_goes_on(smollm) -> None:
    armed = threading.Event()
    engine = LlamaCppEngine(
        smollm.path,
        name=SMOLLM,
        config=EngineConfig(n_ctx=1024, n_slots=1, n_threads=1, cache_disk_bytes=0),
        context_class=failing_context(armed),
    )
    try:

        async def scenario():
            hit = asyncio.ensure_future(generate(engine, "Tell me about rivers.", arm=armed))
            await asyncio.sleep(0)
            waiting = asyncio.ensure_future(generate(engine, "Name a colour."))  # queued: one slot
            results = await asyncio.gather(hit, waiting, return_exceptions=True)
            later = await generate(engine, "Name a fruit.")
            return results, later

        (hit, waiting), later = asyncio.run(scenario())
        assert isinstance(hit, EngineError) and "injected decode failure" in str(hit)
        assert isinstance(waiting, str) and waiting.strip()
        assert later.strip()
        stats = engine.stats()
        assert stats.errors_total == 1 and "injected decode failure" in stats.last_error
        assert stats.active == 0

        with TestClient(create_app(Settings(), engine)) as client:
            health = client.get("/health")
            ok = client.post(
                "/v1/chat/completions",
                json={
                    "messages": [{"role": "user", "content": "Say hi."}],
                    "max_tokens": 8,
                },
            )
        assert health.status_code == 200 and ok.status_code == 200
        body = health.json()
        assert body["engine_errors_total"] == 1
        assert "injected decode failure" in body["last_engine_error"]
    finally:
        engine.close()
