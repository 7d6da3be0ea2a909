"""A GGUF without a chat template: served with its family's template, or refused clearly."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.engine import LlamaCppEngine
from mingyan.errors import ModelError
from mingyan.formats.families import family_by_name
from tests.tiny_models import FAMILIES, make_tiny_model

CONFIG = EngineConfig(n_ctx=256, n_threads=2, n_slots=1)
# family -> general.name in the file (the architecture alone must tell for the first four)
CASES = {
    "qwen2": "some-model",
    "glm4": "some-model",
    "baichuan2": "some-model",
    "ernie4_5": "some-model",
    "chatglm3": "chatglm3-6b",
    "llama3": "Meta-Llama-3-8B-Instruct",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_template_less_gguf_gets_its_family_template(tmp_path, qwen_vocab, name, caplog):
    family = FAMILIES[name]
    path = make_tiny_model(tmp_path / f"{name}.gguf", family, qwen_vocab, chat_template=None, model_name=CASES[name])
    engine = LlamaCppEngine(path, name=f"bare-{name}", config=CONFIG)
    try:
        assert engine.chat_template.source == family_by_name(name).template
        assert f"using the {name} family's canonical template" in caplog.text
        with TestClient(create_app(Settings(), engine)) as http:
            reply = http.post(
                "/v1/chat/completions",
                json={
                    "messages": [{"role": "user", "content": "你好"}],
                    "temperature": 0,
                    "max_tokens": 20,
                },
            ).json()
        assert reply["choices"][0]["message"]["content"] == family.answer_text
        assert reply["choices"][0]["finish_reason"] == "stop"
    finally:
        engine.close()


def test_unknown_family_without_template_is_refused_at_load(tmp_path, qwen_vocab):
    # A llama-architecture file with no template and no telling name could be any model.
    path = make_tiny_model(
        tmp_path / "mystery.gguf", FAMILIES["llama3"], qwen_vocab, chat_template=None, model_name="mystery-model"
    )
    with pytest.raises(ModelError) as info:
        LlamaCppEngine(path, name="mystery", config=CONFIG)
    message = str(info.value)
    assert "no chat template" in message and "'llama'" in message and "\n" not in message


def test_models_info_shows_family_template_source_and_stops(tmp_path, qwen_vocab):
    from mingyan.models.registry import ModelRegistry

    registry = ModelRegistry(tmp_path / "data", tmp_path / "cache", progress=False)
    bare = make_tiny_model(tmp_path / "glm.gguf", FAMILIES["glm4"], qwen_vocab, chat_template=None)
    own = make_tiny_model(tmp_path / "qwen.gguf", FAMILIES["qwen2"], qwen_vocab)
    registry.add(bare, name="glm-bare")
    registry.add(own, name="qwen-own")
    info = registry.info("glm-bare")
    assert info["family"] == "glm4" and info["template_source"] == "family glm4"
    assert "<|user|>" in info["stop_tokens"]
    info = registry.info("qwen-own")
    assert info["family"] == "qwen2" and info["template_source"] == "gguf"


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{{ 'a' * 10**9 }}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    ],
)
def test_a_gguf_whose_template_hogs_cpu_or_memory_is_refused_at_load(tmp_path, qwen_vocab, source):
    path = make_tiny_model(tmp_path / "hostile.gguf", FAMILIES["qwen2"], qwen_vocab, chat_template=source)
    with pytest.raises(ModelError, match="chat template refused at load") as info:
        LlamaCppEngine(path, name="hostile", config=CONFIG)
    assert "\n" not in str(info.value)
