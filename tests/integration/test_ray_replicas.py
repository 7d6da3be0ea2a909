"""`mingyan serve --ray`: two replicas of SmolLM2 on a real local Ray cluster (a head and a second
node process on this machine, each with its own resource, so one replica runs on each).

Requests are spread over both; a follow-up turn of a stored conversation lands on the replica that
served it and reuses its KV state; killing one replica's process (SIGKILL, its PID found through
Ray) mid-load ends every stream in flight cleanly — the stored replies on it `interrupted` with
their text so far — takes it out of rotation, every new request is answered, and a new actor
replaces it on its node and serves again. A second server on the same cluster runs two models on
Ray (SmolLM2 under two names, one and two replicas) beside an upstream (the first server): each
request goes to its model, and the idle one is unloaded — its actors stopped — and started again
on demand.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import SMOLLM, Server, mingyan_env, start_server, stop_server
from tests.integration.test_drain import StreamedReply
from tests.integration.test_durable_history import sse, stored_message
from tests.ray_cluster import LocalCluster, start_cluster

pytestmark = pytest.mark.timeout(900)

# Long replies: still running when their replica is killed (one thread per replica, no drafts).
LONG = "count from 1 to 200 in words, one number per line."
NAMES = ("Alice", "Bob", "Carol", "Dave")  # each prompt differs early: no two look like one conversation
REPLACED_WITHIN_S = 120  # a killed replica's new actor has loaded SmolLM2 (on a busy two-core machine)
KEEP_ALIVE_S = 8


@pytest.fixture(scope="module")
def cluster() -> LocalCluster:
    cluster = start_cluster({"node_a": 1}, num_cpus=3)  # a Ray CPU for each replica of both servers
    try:
        cluster.add_node({"node_b": 1}, num_cpus=3)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def served(cluster: LocalCluster, tmp_path_factory) -> tuple[Server, str]:
    tmp: Path = tmp_path_factory.mktemp("ray")
    db_url = f"sqlite:///{tmp / 'history.db'}"
    server = start_server(
        tmp,
        SMOLLM,
        "--ray",
        cluster.address,
        "--ray-replicas",
        "2",
        "--ray-replica-resources",
        "node_a=1",
        "--ray-replica-resources",
        "node_b=1",
        "--n-threads",
        "1",
        "--n-slots",
        "2",
        "--n-ctx",
        "1024",
        "--no-speculative",
        "--embedding-model",
        "none",
        "--no-auto-titles",
        "--database-url",
        db_url,
    )
    yield server, db_url
    stop_server(server)


def replicas(server: Server) -> list[dict]:
    return server.health()["replicas"]


def placement(server: Server, model: str = SMOLLM) -> list[dict[str, str]]:
    """Each replica's node and process, from /metrics (the public /health does not say)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if line.startswith("mingyan_replica_info{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels["model"] == model:
                found[int(labels["replica"])] = labels
    return [found[i] for i in sorted(found)]


def served_counts(server: Server) -> list[int]:
    return [r["served"] for r in replicas(server)]


def reply(api: httpx.Client, cid: str, content: str, max_tokens: int) -> dict:
    body = {"content": content, "settings": {"max_tokens": max_tokens, "temperature": 0.0}}
    with api.stream("POST", f"/conversations/{cid}/messages", json=body) as r:
        assert r.status_code == 200, r.read()
        done = [e for e in sse(r.iter_lines()) if e["type"] == "done"]
    assert done and done[0]["message"]["status"] == "complete", done
    return done[0]["message"]


def conversation(api: httpx.Client) -> str:
    r = api.post("/conversations", json={})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_one_replica_per_node_and_requests_spread_over_both(served) -> None:
    server, _ = served
    before = replicas(server)
    assert len(before) == 2 and all(r["alive"] for r in before), before
    where = placement(server)
    assert where[0]["node_id"] != where[1]["node_id"], where  # placed by their resources, one per node
    assert "pid" not in before[0] and "node_ip" not in before[0]  # not on the public /health
    counts = served_counts(server)
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120) as client:
        for name in NAMES:
            r = client.chat.completions.create(
                model=SMOLLM,
                messages=[{"role": "user", "content": f"{name} asks: what colour is the sky on a clear day?"}],
                max_tokens=8,
                temperature=0,
            )
            assert r.choices[0].message.content and r.usage.completion_tokens > 0
    after = served_counts(server)
    assert [a - b for a, b in zip(after, counts, strict=True)] == [2, 2]


def test_a_follow_up_turn_lands_on_its_replica_and_reuses_its_kv_state(served) -> None:
    server, _ = served
    api = httpx.Client(base_url=server.url + "/api", timeout=120)
    cid = conversation(api)
    start = served_counts(server)
    reply(api, cid, "Name one animal that lives in the sea.", 12)
    first = served_counts(server)
    home = next(i for i, (a, b) in enumerate(zip(first, start, strict=True)) if a > b)
    # The other replica has now served fewer requests: a request without affinity would go there.
    assert first[home] > first[1 - home]
    second = reply(api, cid, "And one that lives in a river?", 12)
    after = served_counts(server)
    assert after[home] == first[home] + 1 and after[1 - home] == first[1 - home]
    assert second["cached_tokens"] > 0, second  # the first turn's KV state, reused on its replica


def test_killing_a_replica_mid_load_keeps_every_reply_and_serves_new_requests(served) -> None:
    server, db_url = served
    api = httpx.Client(base_url=server.url + "/api", timeout=180)
    streams = [StreamedReply(api, conversation(api), f"{name}, {LONG}", 600) for name in NAMES]
    for stream in streams:
        stream.start()
    for stream in streams:
        assert stream.going.wait(180), f"a reply did not get going: {stream.error!r} {stream.final}"
    victim = replicas(server)[1]
    assert victim["alive"] and victim["in_flight"] > 0, replicas(server)
    old = placement(server)[1]
    os.kill(int(old["pid"]), signal.SIGKILL)  # the replica's own process, as Ray reports it

    for stream in streams:
        stream.join(180)
        assert not stream.is_alive() and stream.error is None and stream.final is not None, (
            stream.error,
            stream.final,
        )
    statuses = [s.final["status"] for s in streams]
    assert statuses.count("interrupted") == victim["in_flight"], statuses
    assert set(statuses) <= {"complete", "interrupted"}, statuses
    for stream in streams:  # never lost: what the client saw is what is stored
        assert stream.text.strip()
        assert stored_message(db_url, stream.message_id) == (stream.final["status"], stream.text)

    assert replicas(server)[1]["state"] in ("starting", "alive"), replicas(server)  # being replaced
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120) as client:
        for name in NAMES:  # answered while the replacement starts (by the other replica, or by it once back)
            r = client.chat.completions.create(
                model=SMOLLM,
                messages=[{"role": "user", "content": f"{name} says hello. Reply briefly."}],
                max_tokens=8,
                temperature=0,
            )
            assert r.choices[0].message.content

        deadline = time.monotonic() + REPLACED_WITHIN_S  # the count of replicas is back to two
        while not all(r["state"] == "alive" for r in replicas(server)):
            assert time.monotonic() < deadline, replicas(server)
            time.sleep(0.5)
        health = replicas(server)
        assert [r["restarts"] for r in health] == [0, 1] and health[1]["error"] is None, health
        new = placement(server)[1]
        assert new["pid"] != old["pid"] and new["node_id"] == old["node_id"], (old, new)  # same resources
        before = served_counts(server)
        for name in NAMES:  # the replacement has served fewer requests: new ones go to it first
            r = client.chat.completions.create(
                model=SMOLLM,
                messages=[{"role": "user", "content": f"{name} asks the new replica: two plus two?"}],
                max_tokens=8,
                temperature=0,
            )
            assert r.choices[0].message.content
    assert served_counts(server)[1] > before[1], (before, served_counts(server))
    assert f"replica 1 of model {SMOLLM} is back in rotation (restart 1" in server.log.read_text()
    deadline = time.monotonic() + 5
    while server.health()["active_requests"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.health()["active_requests"] == 0


def model_states(server: Server) -> dict[str, dict]:
    return {m["name"]: m for m in server.health()["models"]}


def served_by_model(server: Server) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for r in replicas(server):
        found.setdefault(r["model"], []).append(r["served"])
    return found


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_two_models_on_ray_beside_an_upstream_and_an_idle_one_stops_its_actors(cluster, served, tmp_path) -> None:
    """SmolLM2 and a second name for the same file, each its own replicas on the cluster (one, and
    two by --ray-model-replicas), beside the first server as an upstream: each request goes to its
    model; the idle second model is unloaded after its keep-alive (its actors' processes end) and
    started again on demand."""
    upstream, _ = served
    added = subprocess.run(
        [sys.executable, "-m", "mingyan", "models", "add", str(smollm_path()), "--name", "smol-b"],
        env=mingyan_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr
    flags = ["--model", SMOLLM, "--model", "smol-b", "--upstream", f"far={upstream.base_url}#{SMOLLM}"]
    flags += ["--ray-model-replicas", "smol-b=2"]
    flags += ["--ray", cluster.address, "--keep-alive-s", str(KEEP_ALIVE_S), "--n-threads", "1", "--n-slots", "1"]
    flags += ["--n-ctx", "512", "--no-speculative", "--embedding-model", "none", "--cache-disk-mb", "0"]
    server = start_server(tmp_path, None, *flags)
    try:
        assert model_states(server)["smol-b"]["state"] == "unloaded"
        assert [(r["model"], r["state"]) for r in replicas(server)] == [(SMOLLM, "alive")]
        with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=180) as client:

            def ask(model: str) -> str:
                r = client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
                )
                assert r.model == model and r.choices[0].message.content, r
                return r.choices[0].message.content

            first = ask("smol-b")  # started on the cluster on first use
            pids = [int(p["pid"]) for p in placement(server, "smol-b")]
            assert len(set(pids)) == 2, pids
            assert served_by_model(server) == {SMOLLM: [0], "smol-b": [1, 0]}
            assert ask(SMOLLM) == first  # the same file, greedy: the same reply, from its own replica
            assert served_by_model(server) == {SMOLLM: [1], "smol-b": [1, 0]}
            assert ask("far")  # through the upstream (the first server's replicas)

            deadline = time.monotonic() + 10 * KEEP_ALIVE_S
            while model_states(server)["smol-b"]["state"] != "unloaded" or not all(map(process_gone, pids)):
                assert time.monotonic() < deadline, (model_states(server), pids)
                time.sleep(0.5)
            assert [r["model"] for r in replicas(server)] == [SMOLLM]  # its actors stopped, their CPUs freed
            assert ask("smol-b") == first  # started again on demand
            assert model_states(server)["smol-b"]["loads"] == 2
    finally:
        stop_server(server)


def smollm_path() -> Path:
    from mingyan.bootstrap import open_registry
    from mingyan.config import Settings

    return open_registry(Settings(), progress=False).resolve(SMOLLM).path
