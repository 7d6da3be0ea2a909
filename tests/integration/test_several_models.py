"""Two real models served by one `mingyan serve --model A --model B`: each request answered by
its own model, the second loaded on first use and unloaded after its keep-alive, then reloaded on
demand; the shipped embedding model beside them; metrics per model."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.conftest import QWEN, SMOLLM, start_server, stop_server

KEEP_ALIVE_S = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    flags = ("--model", SMOLLM, "--model", QWEN, "--keep-alive-s", str(KEEP_ALIVE_S), "--n-ctx", "1024")
    server = start_server(tmp_path_factory.mktemp("models"), None, *flags)
    yield server
    stop_server(server)


def model_states(server) -> dict[str, dict]:
    return {m["name"]: m for m in server.health()["models"]}


def ask(client: openai.OpenAI, model: str, text: str) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=8, temperature=0
    )


def test_two_models_each_answer_and_an_idle_one_reloads_on_demand(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=300)
    cards = {m.id: m for m in client.models.list().data}
    assert set(cards) == {SMOLLM, QWEN, "multilingual-e5-small"}
    assert cards[SMOLLM].kind == "chat" and cards[QWEN].kind == "chat"  # type: ignore[attr-defined]
    assert cards["multilingual-e5-small"].kind == "embedding"  # type: ignore[attr-defined]
    assert model_states(server)[QWEN]["state"] == "unloaded"  # loaded on first use

    first = ask(client, QWEN, "Say hello.")
    assert first.model == QWEN and first.choices[0].message.content
    small = ask(client, SMOLLM, "Say hello.")
    assert small.model == SMOLLM and small.choices[0].message.content
    assert first.choices[0].message.content != small.choices[0].message.content

    deadline = time.monotonic() + 10 * KEEP_ALIVE_S
    while model_states(server)[QWEN]["state"] != "unloaded":
        assert time.monotonic() < deadline, model_states(server)
        time.sleep(0.5)
    assert model_states(server)[SMOLLM]["state"] == "loaded"  # the first model stays

    again = ask(client, QWEN, "Say hello.")
    assert again.choices[0].message.content == first.choices[0].message.content  # greedy: the same reply
    assert model_states(server)[QWEN]["loads"] == 2
    log = server.log.read_text()
    assert f"loading model {QWEN}" in log and f"unloading model {QWEN}: idle" in log

    vectors = client.embeddings.create(model="multilingual-e5-small", input=["你好", "hello"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0

    with pytest.raises(openai.BadRequestError) as error:
        ask(client, "not-a-model", "hi")
    assert error.value.code == "model_not_found"

    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    for model in (SMOLLM, QWEN):
        assert f'mingyan_time_to_first_token_seconds_count{{model="{model}"}}' in metrics
        assert f'mingyan_generated_tokens_total{{model="{model}"}}' in metrics
