"""A real server under load: metrics, a full queue answers 429, streams complete in full."""

from __future__ import annotations

import re
import threading

import httpx
import openai
import pytest

from tests.conftest import SMOLLM, start_server, stop_server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("load"), SMOLLM, "--n-ctx", "1024", "--n-slots", "1", "--max-queue", "1"
    )
    yield server
    stop_server(server)


def metric(text: str, name: str) -> float:
    match = re.search(rf'^{name}{{model="{SMOLLM}"[^}}]*}} (\S+)$', text, re.M)
    assert match, name
    return float(match.group(1))


def test_metrics_count_what_was_served(smollm_server, client):
    client.chat.completions.create(model=SMOLLM, messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
    text = httpx.get(smollm_server.url + "/metrics").text
    assert metric(text, "mingyan_time_to_first_token_seconds_count") >= 1
    assert metric(text, "mingyan_generated_tokens_total") >= 5
    assert metric(text, "mingyan_prompt_tokens_total") > 0
    assert metric(text, "mingyan_queue_depth") == 0
    assert "mingyan_active_slots" in text and "mingyan_cached_prompt_tokens_total" in text


def test_full_queue_answers_429_with_retry_after_and_nothing_is_lost(small_server):
    body = {
        "model": SMOLLM,
        "stream": True,
        "max_tokens": 300,
        "temperature": 0.8,
        "seed": 3,
        "messages": [{"role": "user", "content": "Tell me a long story."}],
    }
    results: dict[str, object] = {}
    started = threading.Event()

    def stream(name: str) -> None:
        with httpx.Client(timeout=120) as http:
            with http.stream("POST", small_server.base_url + "/chat/completions", json=body) as r:
                lines = []
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        lines.append(line)
                        started.set()
                results[name] = (r.status_code, lines)

    first = threading.Thread(target=stream, args=("first",))
    first.start()
    assert started.wait(60)
    second = threading.Thread(target=stream, args=("second",))
    second.start()
    deadline = 50
    while small_server.health()["queued_requests"] < 1 and deadline:
        deadline -= 1
        threading.Event().wait(0.1)
    client = openai.OpenAI(base_url=small_server.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=SMOLLM, messages=body["messages"], max_tokens=5)
    assert int(info.value.response.headers["Retry-After"]) >= 1
    assert "busy" in info.value.body["message"]
    first.join(120)
    second.join(120)
    for name in ("first", "second"):  # the admitted streams complete in full
        status, lines = results[name]
        assert status == 200 and lines[-1] == "data: [DONE]"
        assert '"finish_reason":"' in lines[-2]
