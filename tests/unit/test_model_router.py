"""The model router over fake engines: routing by model, load on first use, the memory budget
(LRU among idle models), keep-alive unloading on a controlled clock, and the HTTP surface."""

import asyncio
import threading

import httpx
import pytest
from fastapi.testclient import TestClient

from mingyan.api.app import create_app
from mingyan.config import Settings
from mingyan.engine.base import GenerationRequest
from mingyan.engine.fake import FakeEngine
from mingyan.errors import EngineBusyError, InvalidRequestError, ModelError
from mingyan.serving.router import ModelRouter, ModelSource
from mingyan.store.conversations import ConversationStore
from tests.app_server import serve_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Models:
    """Fake engines opened on demand; remembers every one it opened."""

    def __init__(self) -> None:
        self.opened: list[FakeEngine] = []
        self.fail: set[str] = set()

    def source(self, name: str, size_mb: int = 100, **engine) -> ModelSource:
        def open_engine() -> FakeEngine:
            if name in self.fail:
                raise RuntimeError("file is damaged")
            engine_ = FakeEngine(name=name, **engine)
            self.opened.append(engine_)
            return engine_

        return ModelSource(name, open_engine, size_bytes=size_mb << 20)

    def live(self) -> list[str]:
        return [e.info.name for e in self.opened if not e.closed]


def states(router: ModelRouter) -> dict[str, str]:
    return {s.name: s.state for s in router.status()}


async def reply(router: ModelRouter, model: str, text: str = "hi") -> str:
    handle = router.handle(model)
    request = GenerationRequest(tuple(handle.tokenize(text)))
    stream = handle.generate(request)
    try:
        return "".join([event.text async for event in stream])
    finally:
        await stream.aclose()


def test_each_model_answers_with_its_own_engine_loaded_on_first_use():
    models = Models()
    router = ModelRouter([models.source("small"), models.source("big")], keep_alive_s=60)
    router.start()
    assert models.live() == ["small"]  # the first model at start, the others on first use
    assert states(router) == {"small": "loaded", "big": "unloaded"}
    asyncio.run(reply(router, "big", "abc"))
    assert models.live() == ["small", "big"]
    assert [len(e.requests) for e in models.opened] == [0, 1]
    assert router.info.name == "small"  # the router as an Engine is its first model
    assert router.handle("big").info.name == "big"
    with pytest.raises(InvalidRequestError) as error:
        router.handle("other")
    assert error.value.code == "model_not_found" and "'small', 'big'" in str(error.value)
    router.close()
    assert models.live() == []


def test_idle_model_is_unloaded_after_keep_alive_and_reloads_on_demand():
    clock, models = Clock(), Models()
    router = ModelRouter([models.source("small"), models.source("big")], keep_alive_s=300, clock=clock)
    router.start()
    asyncio.run(reply(router, "big"))
    clock.now += 299
    assert router.sweep() == []
    clock.now += 2
    assert router.sweep() == ["big"]  # the first model is pinned: never unloaded
    assert states(router) == {"small": "loaded", "big": "unloaded"}
    assert models.live() == ["small"]
    assert asyncio.run(reply(router, "big", "again")) == "You said: again"
    assert [s.loads for s in router.status()] == [1, 2]
    router.close()


def test_model_streaming_is_never_unloaded():
    clock, models = Clock(), Models()
    router = ModelRouter([models.source("small"), models.source("big")], keep_alive_s=10, clock=clock)
    router.start()

    async def hold() -> None:
        handle = router.handle("big")
        stream = handle.generate(GenerationRequest(tuple(handle.tokenize("x"))))
        clock.now += 100
        assert router.sweep() == []  # in flight: kept however long it runs
        assert router.status()[1].in_flight == 1
        await stream.aclose()  # closed without being read: still counted as ended
        assert router.status()[1].in_flight == 0
        clock.now += 10
        assert router.sweep() == ["big"]

    asyncio.run(hold())
    router.close()


def test_memory_budget_unloads_least_recently_used_idle_model():
    clock, models = Clock(), Models()
    sources = [models.source("a", 100), models.source("b", 100), models.source("c", 100)]
    router = ModelRouter(sources, budget_bytes=250 << 20, keep_alive_s=1e6, clock=clock)
    router.start()
    asyncio.run(reply(router, "b"))
    clock.now += 1
    asyncio.run(reply(router, "c"))  # a (pinned) + b + c > 250 MiB: b, the idle one, goes
    assert models.live() == ["a", "c"]
    clock.now += 1
    asyncio.run(reply(router, "b"))  # now c is the least recently used
    assert models.live() == ["a", "b"]


def test_budget_full_of_models_in_use_refuses_and_unloads_nothing():
    models = Models()
    router = ModelRouter([models.source("a", 100), models.source("b", 100)], budget_bytes=150 << 20)
    router.start()
    with pytest.raises(EngineBusyError) as error:
        router.load("b")
    assert "memory budget of 150 MiB" in str(error.value)
    assert models.live() == ["a"] and states(router)["b"] == "unloaded"


def test_failed_load_is_an_error_state_and_later_loads_retry():
    models = Models()
    models.fail.add("b")
    router = ModelRouter([models.source("a"), models.source("b")])
    router.start()
    with pytest.raises(ModelError, match="file is damaged"):
        router.load("b")
    status = router.status()[1]
    assert status.state == "error" and status.error == "file is damaged"
    models.fail.clear()
    router.load("b")
    assert states(router)["b"] == "loaded"


def test_concurrent_first_requests_load_a_model_once():
    models = Models()
    gate = threading.Event()
    slow = models.source("b")

    def open_slowly():
        gate.wait(5)
        return slow.open()

    router = ModelRouter([models.source("a"), ModelSource("b", open_slowly)])
    router.start()
    threads = [threading.Thread(target=router.load, args=("b",)) for _ in range(4)]
    for t in threads:
        t.start()
    status = router.status()[1]
    assert status.state == "loading" and status.loading_s is not None
    gate.set()
    for t in threads:
        t.join(5)
    assert models.live() == ["a", "b"]


# ---- over HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    models = Models()
    router = ModelRouter([models.source("small", n_ctx=256), models.source("big", n_ctx=512)])
    router.start()
    with TestClient(create_app(Settings(data_dir=tmp_path), router)) as client:
        yield client, models, router


def test_http_routes_by_model_and_lists_every_model(served):
    client, models, _ = served
    cards = client.get("/v1/models").json()["data"]
    assert [(c["id"], c["kind"], c["status"]) for c in cards] == [
        ("small", "chat", "loaded"),
        ("big", "chat", "unloaded"),
    ]
    for model in ("small", "big"):
        r = client.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200 and r.json()["model"] == model
    assert [len(e.requests) for e in models.opened] == [1, 1]
    r = client.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code in (400, 404) and r.json()["error"]["code"] == "model_not_found"
    health = client.get("/health").json()
    assert [m["state"] for m in health["models"]] == ["loaded", "loaded"]
    assert health["model"] == "small"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'mingyan_generated_tokens_total{model="big"}' in metrics.text
    assert 'mingyan_generated_tokens_total{model="small"}' in metrics.text


def test_conversation_keeps_its_model(tmp_path, store: ConversationStore):
    models = Models()
    router = ModelRouter([models.source("small"), models.source("big")])
    router.start()
    app = create_app(Settings(data_dir=tmp_path, auto_titles=False), router, store=store)
    with serve_app(app) as url, httpx.Client(base_url=url + "/api", timeout=30) as api:
        first = api.post("/conversations", json={}).json()
        second = api.post("/conversations", json={"model": "big"}).json()
        assert (first["model"], second["model"]) == ("small", "big")
        bad = api.post("/conversations", json={"model": "nope"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "model_not_found"
        for conversation in (first, second):
            r = api.post(f"/conversations/{conversation['id']}/messages", json={"content": "hi", "stream": False})
            assert r.json()["message"]["model_name"] == conversation["model"], r.text
        switched = api.patch(f"/conversations/{first['id']}", json={"model": "big"})
        assert switched.json()["model"] == "big"
        r = api.post(f"/conversations/{first['id']}/messages", json={"content": "again", "stream": False})
        assert r.json()["message"]["model_name"] == "big"
        assert api.patch(f"/conversations/{first['id']}", json={"model": "nope"}).status_code == 400
    assert [len(e.requests) for e in models.opened] == [1, 2]


def test_model_flag_repeats_into_the_models_setting():
    from mingyan.cli.flags import settings_from_args
    from mingyan.cli.main import build_parser

    parser = build_parser()
    one = settings_from_args(parser.parse_args(["serve", "--model", "a"]))
    assert (one.model, one.models) == ("a", [])
    two = settings_from_args(parser.parse_args(["serve", "--model", "a", "--model", "b", "--keep-alive-s", "2.5"]))
    assert (two.model, two.models, two.keep_alive_s) == ("a", ["b"], 2.5)
    default = settings_from_args(parser.parse_args(["serve"]))
    assert default.models == [] and default.model == Settings().model
