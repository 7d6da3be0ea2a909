"""Every model family mingyan supports, end to end through the real llama.cpp engine.

For each llama.cpp architecture a tiny real GGUF model is generated (see tests/tiny_models.py)
with the real Qwen2.5 byte-level BPE tokenizer, the family's special tokens and the family's
canonical chat template. Its weights make greedy decoding answer a known text and then emit
the family's end-of-turn token, but only when the prompt ends the way the family's
generation prompt ends. So a correct answer with finish_reason "stop" after exactly that
many tokens shows that llama.cpp loads the architecture, that the template was rendered
and tokenized with its special tokens intact, and that the engine stopped on the family's
stop token (not on max_tokens).
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from fastapi.testclient import TestClient

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.engine import LlamaCppEngine
from tests.tiny_models import FAMILIES, Family

USER = [{"role": "user", "content": "Hi there, 你好"}]
GREEDY = {"temperature": 0, "max_tokens": 20}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request) -> Family:
    return FAMILIES[request.param]


@pytest.fixture(scope="module")
def engine(family, tiny_model_path) -> Iterator[LlamaCppEngine]:
    config = EngineConfig(n_ctx=256, n_threads=2, n_slots=1)
    engine = LlamaCppEngine(tiny_model_path(family.name), name=f"tiny-{family.name}", config=config)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def client(engine) -> Iterator[openai.OpenAI]:
    """The official openai client speaking HTTP to the app, in process."""
    with TestClient(create_app(Settings(), engine)) as http:
        with openai.OpenAI(base_url=f"{http.base_url}/v1", api_key="unused", http_client=http, max_retries=0) as c:
            yield c


def test_the_architecture_loads(engine, family):
    assert engine.info.architecture == family.arch
    assert engine.chat_template is not None


def test_chat_answers_and_stops_on_the_family_stop_token(client, family):
    reply = client.chat.completions.create(model=f"tiny-{family.name}", messages=USER, **GREEDY)
    choice = reply.choices[0]
    assert choice.message.content == family.answer_text
    assert choice.finish_reason == "stop"
    assert reply.usage.completion_tokens == len(family.answer)


def test_streamed_chat_equals_the_whole_answer(client, family):
    stream = client.chat.completions.create(model=f"tiny-{family.name}", messages=USER, stream=True, **GREEDY)
    pieces, finish = [], None
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == family.answer_text
    assert finish == "stop"


def test_raw_completion_answers_after_the_generation_prompt(client, family):
    reply = client.completions.create(model=f"tiny-{family.name}", prompt="Hi there" + family.after, **GREEDY)
    assert reply.choices[0].text == family.answer_text
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == len(family.answer)


def test_without_the_generation_prompt_the_model_never_stops(client, family):
    # The control for the tests above: the answer depends on how the prompt ends.
    reply = client.completions.create(model=f"tiny-{family.name}", prompt="Hi there", temperature=0, max_tokens=5)
    assert reply.choices[0].text == "?????"
    assert reply.choices[0].finish_reason == "length"
