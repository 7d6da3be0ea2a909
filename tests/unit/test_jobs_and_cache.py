"""The fair queue and the KV state cache, without a model."""

from __future__ import annotations

import asyncio
import json

import pytest

from mingyan.engine.base import GenerationRequest
from mingyan.engine.llamacpp.jobs import FairQueue, Job
from mingyan.engine.llamacpp.prefix_cache import (
    StateCache,
    common_prefix,
    forget_on_disk,
    scope_id,
)
from mingyan.errors import EngineBusyError

SHA = "ab" * 32


def job(user: str, n: int = 0) -> Job:
    return Job(request=GenerationRequest(prompt_tokens=(n,), user=user), loop=asyncio.new_event_loop())


def test_users_take_turns_whatever_their_number_of_requests():
    queue = FairQueue(max_size=100)
    queue.put(job("x", 0), 1)
    assert queue.pop().request.prompt_tokens == (0,)  # x is being served
    for i in range(1, 6):
        queue.put(job("x", i), 1)
    queue.put(job("y", 100), 1)
    queue.put(job("z", 200), 1)
    order = [(j.user, j.request.prompt_tokens[0]) for j in iter(queue.pop, None)]
    assert order[:3] == [("y", 100), ("z", 200), ("x", 1)]
    assert [n for u, n in order if u == "x"] == [1, 2, 3, 4, 5]  # FIFO per user


def test_full_queue_refuses_with_retry_after():
    queue = FairQueue(max_size=2)
    queue.put(job("a"), 1)
    queue.put(job("b"), 1)
    with pytest.raises(EngineBusyError) as info:
        queue.put(job("c"), 7.5)
    assert info.value.retry_after_s == 7.5 and len(queue) == 2


def test_cancelled_jobs_are_skipped():
    queue = FairQueue(max_size=5)
    gone = job("a", 1)
    queue.put(gone, 1)
    queue.put(job("a", 2), 1)
    gone.cancelled.set()
    assert queue.pop().request.prompt_tokens == (2,)
    assert queue.pop() is None


@pytest.mark.parametrize(
    "a, b, n",
    [
        ([], [1], 0),
        ([1, 2, 3], [1, 2, 3], 3),
        ([1, 2, 3], [1, 2, 4], 2),
        ([5] * 1000, [5] * 999 + [6], 999),
    ],
)
def test_common_prefix(a, b, n):
    assert common_prefix(a, b) == n == common_prefix(b, a)
    assert common_prefix(list(a), tuple(b)) == n  # a slot's list against a request's tuple


def cache(tmp_path, **kw) -> StateCache:
    args = dict(model_sha256=SHA, ram_bytes=1 << 20, disk_dir=tmp_path, disk_bytes=1 << 20, min_tokens=4)
    return StateCache(**(args | kw))


def test_best_match_is_exact_prefix_only(tmp_path):
    c = cache(tmp_path, disk_dir=None)
    c.put("s", [1, 2, 3, 4, 5, 6], b"A" * 10)
    c.put("s", [1, 2, 9, 9, 9, 9], b"B" * 10)
    entry, n = c.best("s", [1, 2, 3, 4, 7, 7, 7], limit=6)
    assert entry.tokens == (1, 2, 3, 4, 5, 6) and n == 4
    entry, n = c.best("s", [1, 2, 3, 4, 5, 6, 7], limit=3)
    assert n == 3
    assert c.best("s", [8, 1, 2, 3], limit=3) == (None, 0)


def test_longer_state_supersedes_its_prefix(tmp_path):
    c = cache(tmp_path, disk_dir=None)
    c.put("s", [1, 2, 3, 4], b"old")
    c.put("s", [1, 2, 3, 4, 5, 6], b"new")
    assert c.stats()[0] == 1
    entry, _ = c.best("s", [1, 2, 3, 4, 5, 6, 7], limit=6)
    assert c.load(entry) == b"new"


def test_ram_budget_evicts_least_recently_used(tmp_path):
    c = cache(tmp_path, disk_dir=None, ram_bytes=25)
    for i in range(3):
        c.put("s", [i, 1, 2, 3, 4], bytes([i]) * 10)
    assert c.stats()[:2] == (2, 20)
    assert c.best("s", [0, 1, 2, 3, 4, 5], limit=5) == (None, 0)


def test_states_survive_a_restart_on_disk(tmp_path):
    first = cache(tmp_path)
    first.put("s", list(range(10)), b"state-bytes")
    first.close()
    again = cache(tmp_path, ram_bytes=0)
    entry, n = again.best("s", list(range(12)), limit=11)
    assert n == 10 and again.load(entry) == b"state-bytes"
    other_model = cache(tmp_path, model_sha256="cd" * 32)
    assert other_model.best("s", list(range(12)), limit=11) == (None, 0)


def test_corrupt_state_file_is_ignored(tmp_path):
    first = cache(tmp_path)
    first.put("s", list(range(10)), b"state-bytes")
    first.close()
    (path,) = (tmp_path / SHA[:32]).glob("*/*.kv")
    data = path.read_bytes()
    path.write_bytes(data[:-3] + b"XYZ")
    again = cache(tmp_path)
    entry, _ = again.best("s", list(range(12)), limit=11)
    assert again.load(entry) is None
    assert again.best("s", list(range(12)), limit=11) == (None, 0)
    assert not path.exists()


def test_disk_budget_drops_oldest_files(tmp_path):
    c = cache(tmp_path, ram_bytes=0, disk_bytes=2500)
    for i in range(5):
        c.put("s", [i] * 8, bytes(1000))
    c.close()
    files = list((tmp_path / SHA[:32]).glob("*/*.kv"))
    assert len(files) == 2
    header = json.loads(files[0].read_bytes().split(b"\n")[1])
    assert header["model_sha256"] == SHA


def test_states_are_reused_only_within_their_scope(tmp_path):
    c = cache(tmp_path)
    c.put("alice", list(range(10)), b"alice-state")
    assert c.best("bob", list(range(12)), limit=11) == (None, 0)
    entry, n = c.best("alice", list(range(12)), limit=11)
    assert n == 10 and c.load(entry) == b"alice-state"
    c.put("bob", list(range(10)), b"bob-state")  # the same tokens in another scope: both kept
    assert c.stats()[0] == 2
    c.close()
    again = cache(tmp_path, ram_bytes=0)  # after a restart too
    assert again.load(again.best("bob", list(range(12)), limit=11)[0]) == b"bob-state"
    assert again.best("carol", list(range(12)), limit=11) == (None, 0)
    folders = sorted(p.name for p in (tmp_path / SHA[:32]).iterdir())
    assert folders == sorted([scope_id("alice"), scope_id("bob")])
    assert all("alice" not in name and "bob" not in name for name in folders)


def test_forget_a_scope_or_one_conversation_in_ram_and_on_disk(tmp_path):
    c = cache(tmp_path, ram_bytes=0)  # everything goes to disk at once
    c.put("alice", [1] * 8, b"a1", label="conv-1")
    c.put("alice", [2] * 8, b"a2", label="conv-2")
    c.put("bob", [1] * 8, b"b1", label="conv-3")
    c.close()  # waits for the writer
    c = cache(tmp_path, ram_bytes=0)
    assert c.forget("alice", "conv-1") == 1
    assert c.best("alice", [1] * 9, limit=8) == (None, 0)
    assert c.best("alice", [2] * 9, limit=8)[1] == 8
    assert len(list((tmp_path / SHA[:32] / scope_id("alice")).glob("*.kv"))) == 1
    assert c.forget("alice") == 1
    assert not (tmp_path / SHA[:32] / scope_id("alice")).exists()
    assert c.best("bob", [1] * 9, limit=8)[1] == 8
    again = cache(tmp_path)
    assert again.best("alice", [2] * 9, limit=8) == (None, 0) and again.stats()[0] == 1


def test_forget_on_disk_without_an_engine(tmp_path):
    c = cache(tmp_path, ram_bytes=0)
    c.put("alice", [1] * 8, b"a1")
    c.close()
    assert forget_on_disk(tmp_path, "alice") == 1
    assert not list(tmp_path.glob(f"*/{scope_id('alice')}"))


def test_unscoped_files_of_older_versions_are_removed(tmp_path):
    folder = tmp_path / SHA[:32]
    folder.mkdir()
    (folder / "old.kv").write_bytes(b"MINGYAN-KV1\n{}\n")
    cache(tmp_path)
    assert not (folder / "old.kv").exists()
