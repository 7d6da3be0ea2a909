"""The KV cache is no oracle across users (issue 19, item 1): a real server with SmolLM2 and accounts.

- Another user's guesses of Alice's system prompt all report the same `cached_tokens`, whichever
  digit they guess, and an exact copy of her prompt reuses nothing; Alice's own follow-up reuses.
- Deleting a conversation removes its saved states; deleting Alice (admin API) leaves no file of
  hers in the KV directory, and after a restart nothing of hers is indexed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from mingyan.engine.llamacpp.prefix_cache import label_id, scope_id
from tests.conftest import SMOLLM, mingyan_env, start_server, stop_server

PASSWORD = "correct horse battery"
SECRET = "You are the vault keeper. The vault code is 583920. Never tell anyone the vault code."


def create_user(tmp: Path, name: str, *flags: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mingyan", "users", "create", name, "--password-stdin", *flags],
        input=PASSWORD,
        capture_output=True,
        text=True,
        env=mingyan_env(tmp),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def sign_in(url: str, name: str) -> httpx.Client:
    api = httpx.Client(base_url=url + "/api", timeout=120)
    r = api.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    api.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return api


def key_client(api: httpx.Client, url: str) -> openai.OpenAI:
    r = api.post("/keys", json={"name": "test"})
    assert r.status_code == 201, r.text
    return openai.OpenAI(base_url=url + "/v1", api_key=r.json()["key"], max_retries=0, timeout=120)


def cached(client: openai.OpenAI, system: str, user: str = "Hello, who are you?") -> int:
    answer = client.chat.completions.create(
        model=SMOLLM,
        max_tokens=2,
        temperature=0,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
    )
    return answer.usage.prompt_tokens_details.cached_tokens


def files_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.kv")) if folder.is_dir() else []


def wait_for(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def label_of(path: Path) -> str:
    with open(path, "rb") as f:
        f.readline()
        return json.loads(f.readline())["label"]


@pytest.fixture
def server_dir(tmp_path: Path) -> Path:
    for name, flags in (("root", ("--admin",)), ("alice", ()), ("bob", ())):
        create_user(tmp_path, name, *flags)
    return tmp_path


def serve(tmp: Path):
    # No RAM for saved states: every finished request's state goes to disk at once, so the test
    # can see it; four slots, so that Alice's state also stays in a slot for Bob to hit.
    return start_server(
        tmp,
        SMOLLM,
        "--n-ctx",
        "2048",
        "--n-slots",
        "4",
        "--cache-ram-mb",
        "0",
        "--kv-dir",
        str(tmp / "kv"),
        "--no-auto-titles",
    )


def test_guesses_of_another_users_prompt_learn_nothing_and_deletion_removes_states(server_dir: Path) -> None:
    server = serve(server_dir)
    try:
        alice_api, bob_api, root = (sign_in(server.url, n) for n in ("alice", "bob", "root"))
        alice, bob = key_client(alice_api, server.url), key_client(bob_api, server.url)
        alice_id = alice_api.get("/auth/me").json()["user"]["id"]
        assert cached(alice, SECRET) == 0
        assert cached(bob, SECRET) == 0  # her exact prompt: nothing of hers is reused
        prefix = SECRET.split("583920")[0]
        guesses = [cached(bob, prefix + f"{digit}99999.") for digit in "4567"]  # 5 is right
        assert len(set(guesses[1:])) == 1, guesses  # the right digit looks like every wrong one
        assert cached(alice, SECRET, "Tell me a joke.") > 20  # her own follow-up reuses her prefix

        folder = wait_for(lambda: list((server_dir / "kv").glob(f"*/{scope_id(alice_id)}")), "Alice's folder")[0]
        wait_for(lambda: files_in(folder), "Alice's saved states")

        # One conversation's states go with the conversation.
        conversation = alice_api.post("/conversations", json={"settings": {"max_tokens": 4, "temperature": 0}})
        cid = conversation.json()["id"]
        r = alice_api.post(f"/conversations/{cid}/messages", json={"content": SECRET, "stream": False})
        assert r.status_code in (200, 201), r.text
        mine = wait_for(
            lambda: [p for p in files_in(folder) if label_of(p) == label_id(cid)], "the conversation's state"
        )
        others = [p for p in files_in(folder) if p not in mine]
        assert alice_api.delete(f"/conversations/{cid}").status_code == 204
        assert not any(p.exists() for p in mine)
        assert all(p.exists() for p in others)  # her other states stay

        assert root.delete(f"/admin/users/{alice_id}").status_code == 204
        assert files_in(folder) == [] and not folder.exists()
        bob_folder = folder.parent / scope_id(bob_api.get("/auth/me").json()["user"]["id"])
        assert files_in(bob_folder)  # Bob's own states stay
    finally:
        stop_server(server)
    assert not list((server_dir / "kv").glob(f"*/{scope_id(alice_id)}"))  # not written back at shutdown
    server = serve(server_dir)
    try:
        assert not list((server_dir / "kv").glob(f"*/{scope_id(alice_id)}"))
        root = key_client(sign_in(server.url, "root"), server.url)
        assert cached(root, SECRET, "Tell me a joke.") == 0  # nothing of hers came back with the restart
    finally:
        stop_server(server)


def test_forget_during_a_running_request_keeps_nothing_of_it(tmp_path: Path) -> None:
    import asyncio
    import threading

    from mingyan.bootstrap import open_registry
    from mingyan.config import Settings
    from mingyan.engine.base import GenerationRequest, SamplingParams
    from mingyan.engine.llamacpp.config import EngineConfig
    from mingyan.engine.llamacpp.engine import LlamaCppEngine

    entry = open_registry(Settings(), progress=False).resolve(SMOLLM)
    config = EngineConfig(n_ctx=1024, n_slots=2, n_threads=2, cache_dir=tmp_path, cache_disk_bytes=1 << 30)
    engine = LlamaCppEngine(entry.path, name=SMOLLM, sha256=entry.sha256, config=config)
    prompt = tuple(
        engine.tokenize(
            engine.chat_template.render(
                [{"role": "system", "content": SECRET}, {"role": "user", "content": "Count from one to twenty."}]
            )
        )
    )

    async def run(scope: str, forget_midway: bool = False) -> int:
        request = GenerationRequest(prompt, SamplingParams(temperature=0, max_tokens=24), cache_scope=scope)
        forgetting = None
        async for event in engine.generate(request):
            if forget_midway and forgetting is None:
                forgetting = threading.Thread(target=engine.forget, args=(scope,))
                forgetting.start()  # from another thread, as the admin route does
            if event.usage is not None:
                if forgetting is not None:
                    forgetting.join()
                return event.usage.cached_tokens
        raise AssertionError("no finish event")

    try:
        assert asyncio.run(run("alice")) == 0
        assert asyncio.run(run("alice")) > 0  # her own state is reused
        assert asyncio.run(run("alice", forget_midway=True)) > 0
        assert asyncio.run(run("alice")) == 0  # neither her slot nor a saved state survived
        engine.forget("alice")
    finally:
        engine.close()  # saves what is in RAM: nothing of hers
    assert not list(tmp_path.glob(f"*/{scope_id('alice')}/*.kv"))
