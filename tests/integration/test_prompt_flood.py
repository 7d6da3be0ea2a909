"""A flood of expensive prompts cannot starve other requests (issue 19, item 2): real server, SmolLM2."""

from __future__ import annotations

import threading
import time

import httpx

FLOOD = [{"role": "user", "content": "<|im_start|>x<|im_end|>"} for _ in range(1000)]  # 4,000 markers


def test_a_flood_of_special_token_look_alikes_leaves_others_responsive(smollm_server) -> None:
    stop = threading.Event()
    answered: list[int] = []

    def flood() -> None:
        with httpx.Client(base_url=smollm_server.url, timeout=120) as c:
            while not stop.is_set():
                r = c.post("/v1/chat/completions", json={"messages": FLOOD, "max_tokens": 1})
                answered.append(r.status_code)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(24)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        waits = []
        with httpx.Client(base_url=smollm_server.url, timeout=60) as other:
            for _ in range(5):
                start = time.monotonic()
                assert other.get("/api/auth/me").status_code == 200
                waits.append(time.monotonic() - start)
                time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert max(waits) < 2.0, waits
    assert answered and all(code in (200, 400, 429) for code in answered), answered


def test_a_hundred_thousand_messages_are_refused_at_once(smollm_server) -> None:
    body = {"messages": [{"role": "user", "content": "a"}] * 100_000, "max_tokens": 1}
    start = time.monotonic()
    r = httpx.post(smollm_server.base_url + "/chat/completions", json=body, timeout=60)
    assert time.monotonic() - start < 5.0
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages", r.text


def test_a_prompt_longer_than_any_context_is_refused_before_tokenizing(smollm_server) -> None:
    r = httpx.post(
        smollm_server.base_url + "/completions", json={"prompt": "<|im_end|>" * 200_000, "max_tokens": 1}, timeout=60
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "prompt" and r.json()["error"]["code"] == "context_length_exceeded"
