"""The default model answers a Chinese question in Chinese, through the official client."""

from __future__ import annotations

import openai
import pytest

from mingyan.config import DEFAULT_EMBEDDING_MODEL
from tests.conftest import QWEN, start_server, stop_server


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    # No --model: the server must pick the default, the bilingual Qwen model.
    server = start_server(tmp_path_factory.mktemp("default"), None, "--n-ctx", "2048")
    yield server
    stop_server(server)


def test_default_model_answers_chinese_in_chinese(default_server):
    client = openai.OpenAI(base_url=default_server.base_url, api_key="unused", max_retries=0, timeout=300)
    assert [m.id for m in client.models.list().data] == [QWEN, DEFAULT_EMBEDDING_MODEL]
    reply = client.chat.completions.create(
        model=QWEN,
        messages=[{"role": "user", "content": "中国的首都是哪座城市？请用中文简短回答。"}],
        max_tokens=40,
        temperature=0,
    )
    text = reply.choices[0].message.content
    assert "北京" in text, text
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) >= 2
