"""A conversation's KV state outlives a server restart (saved on SIGTERM, found by prefix)."""

from __future__ import annotations

import openai

from tests.conftest import SMOLLM, start_server, stop_server

HISTORY = [
    {"role": "system", "content": "You are a patient tutor. " * 10},
    {"role": "user", "content": "Explain what a prime number is."},
]


def ask(server, messages, **kwargs):
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=120)
    return client.chat.completions.create(model=SMOLLM, messages=messages, temperature=0, **kwargs)


def test_follow_up_after_restart_comes_from_the_disk_cache(tmp_path):
    kv = tmp_path / "kv"
    args = ("--n-ctx", "1024", "--kv-dir", str(kv))
    server = start_server(tmp_path, SMOLLM, *args)
    try:
        first = ask(server, HISTORY, max_tokens=20)
    finally:
        stop_server(server)  # SIGTERM: the server saves its KV states on the way out
    assert server.process.returncode is not None
    assert list(kv.rglob("*.kv")), "no KV state was saved at shutdown"
    follow = [
        *HISTORY,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Give an example."},
    ]
    server = start_server(tmp_path, SMOLLM, *args)
    try:
        reply = ask(server, follow, max_tokens=5)
    finally:
        stop_server(server)
    assert reply.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens
