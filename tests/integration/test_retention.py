"""Retention on a controlled clock, against the real SmolLM2 engine and SQLite: exactly the
expired conversations go, with their saved KV-state files; the others and their files stay."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path

from mingyan.api.app import create_app
from mingyan.api.retention import retention_job
from mingyan.bootstrap import open_registry
from mingyan.config import Settings
from mingyan.engine.llamacpp.config import EngineConfig
from mingyan.engine.llamacpp.engine import LlamaCppEngine
from mingyan.engine.llamacpp.prefix_cache import label_id
from mingyan.store.accounts.account_store import AccountStore
from mingyan.store.conversations import ConversationStore
from mingyan.store.db import Database, default_url, open_database
from mingyan.store.migrate import upgrade
from mingyan.store.tables import utcnow
from tests.conftest import SMOLLM


def labels_on_disk(kv: Path) -> list[str]:
    found = []
    for path in kv.glob("*/*/*.kv"):
        with open(path, "rb") as f:
            f.readline()
            found.append(json.loads(f.readline())["label"])
    return found


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_retention_deletes_exactly_the_expired_conversations_and_their_kv_files(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    upgrade(url)
    store = ConversationStore(Database(open_database(url)))
    entry = open_registry(Settings(), progress=False).resolve(SMOLLM)
    kv = tmp_path / "kv"
    config = EngineConfig(n_ctx=1024, n_slots=1, n_threads=2, cache_dir=kv, cache_ram_bytes=0, cache_disk_bytes=1 << 30)
    engine = LlamaCppEngine(entry.path, name=SMOLLM, sha256=entry.sha256, config=config)
    app = create_app(Settings(auto_titles=False, retention_days=30), engine, store=store)
    ctx = app.state.context
    conversations = ctx.conversations

    async def chat(owner: str, text: str) -> str:
        cid = (await asyncio.to_thread(store.create_conversation, owner, settings={"max_tokens": 4})).id
        exchange = await conversations.send(owner, cid, text)
        await exchange.reply.wait()
        return cid

    async def scenario() -> tuple[list[str], int]:
        old = [await chat("alice", "Hello, old friend."), await chat("bob", "An old question.")]
        await asyncio.sleep(0.05)
        cutoff = utcnow()
        await asyncio.sleep(0.05)
        new = [await chat("alice", "Hello again, new friend.")]
        wait_for(lambda: {label_id(c) for c in old + new} <= set(labels_on_disk(kv)))
        job = retention_job(ctx, clock=lambda: cutoff + timedelta(days=30))
        assert job is not None
        gone = await job.run_once()
        return old + new, gone

    try:
        (old_a, old_b, new), gone = asyncio.run(scenario())
        assert gone == 2
        owners = {"alice": [new], "bob": []}
        for owner, kept in owners.items():
            assert [c.id for c in store.list_conversations(owner)] == kept
        on_disk = labels_on_disk(kv)
        assert label_id(new) in on_disk and label_id(old_a) not in on_disk and label_id(old_b) not in on_disk
        (entry_row,) = AccountStore.open(store.db).ledger.audit_events(event="retention_deleted")
        assert entry_row.details == {"conversations": 2, "days": 30}
    finally:
        engine.close()
        store.db.dispose()
