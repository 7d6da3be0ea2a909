"""Draining over a fake engine: what a draining app answers, and when a drain ends."""

import asyncio

from fastapi.testclient import TestClient

from mingyan.api.app import create_app
from mingyan.api.drain import Drain
from mingyan.config import Settings
from mingyan.engine.fake import FakeEngine


def test_a_draining_app_refuses_new_requests_and_health_says_so():
    app = create_app(Settings(drain_timeout=12), FakeEngine(n_ctx=256))
    with TestClient(app) as client:
        ok = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert ok.status_code == 200 and client.get("/health").json()["status"] == "ok"
        app.state.context.drain.begin()
        refused = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert refused.status_code == 503
        assert 12 <= int(refused.headers["retry-after"]) <= 17
        assert refused.headers["connection"] == "close"
        assert refused.json()["error"]["code"] == "server_shutting_down"
        assert client.get("/v1/models").status_code == 503
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "draining"


def test_a_drain_waits_for_work_then_stops_what_is_left():
    stopped = []

    async def stop_work():
        stopped.append(True)

    busy = [True]
    drain = Drain(0.3, idle=lambda: not busy[0], stop_work=stop_work)
    assert asyncio.run(drain.run()) is False  # still busy at the timeout
    assert drain.expired and stopped == [True]

    async def finish_soon(d: Drain) -> bool:
        asyncio.get_running_loop().call_later(0.2, busy.__setitem__, 0, False)
        return await d.run()

    drain = Drain(30, idle=lambda: not busy[0], stop_work=stop_work)
    assert asyncio.run(finish_soon(drain)) is True and not drain.expired and len(stopped) == 2
