"""`mingyan serve --config FILE` starts a real server whose models come from the file's [[models]]
(two local models and an upstream one) and whose settings come from its keys; a flag overrides
the file. /v1/models lists every model, read with the official `openai` client."""

from __future__ import annotations

import httpx
from openai import OpenAI

from tests.conftest import QWEN, SMOLLM, start_server, stop_server

CONFIG = f"""
n-ctx = 1024
drain-timeout = 3
auto-titles = false
embedding-model = "none"
keep-alive-s = 120

[[models]]
name = "{SMOLLM}"

[[models]]
name = "{QWEN}"

[[models]]
name = "far"
upstream = "http://127.0.0.1:9/v1"
upstream-model = "someone-elses-model"
"""


def test_a_server_started_from_a_config_file_serves_its_models(tmp_path) -> None:
    config = tmp_path / "mingyan.toml"
    config.write_text(CONFIG, encoding="utf-8")
    server = start_server(tmp_path, None, "--config", str(config), "--n-ctx", "2048")
    try:
        client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        assert sorted(m.id for m in client.models.list()) == sorted([SMOLLM, QWEN, "far"])
        reply = client.chat.completions.create(
            model=SMOLLM, messages=[{"role": "user", "content": "Say hello."}], max_tokens=4
        )
        assert reply.model == SMOLLM and reply.choices[0].message.content
        listed = {m["id"]: m for m in httpx.get(server.base_url + "/models", timeout=10).json()["data"]}
        assert listed[SMOLLM]["context_length"] == 2048  # the flag beat the file's 1024
        where = {m["name"]: m["where"] for m in httpx.get(server.url + "/health", timeout=10).json()["models"]}
        assert where == {SMOLLM: "local", QWEN: "local", "far": "http://127.0.0.1/v1 (port 9)"}
    finally:
        stop_server(server)
