"""/v1/embeddings against a real `mingyan serve` with the shipped multilingual-e5-small, the
official `openai` client, and llama.cpp's own embedding path as the reference."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from mingyan.bootstrap import open_registry
from mingyan.config import DEFAULT_EMBEDDING_MODEL, Settings
from mingyan.engine.llamacpp.high_level import load_llama
from tests.conftest import SMOLLM, start_server, stop_server

E5 = DEFAULT_EMBEDDING_MODEL
TEXTS = [
    "猫坐在垫子上",
    "一只猫在垫子上",
    "股票市场今天下跌",
    "The cat sits on the mat.",
    "query: how much protein should a female eat",
    "passage: 北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "Mixed 中英文 text with numbers 12345 and punctuation！？",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("embed"), SMOLLM, "--n-ctx", "1024")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def oai(server):
    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=300) as c:
        yield c


@pytest.fixture(scope="module")
def reference():
    """llama.cpp's own embedding path (llama-cpp-python's high-level Llama) on the same file,
    loaded as mingyan loads weights (where the CPU has Intel AMX: without the extra buffer types)."""
    path = open_registry(Settings(), progress=False).resolve(E5).path
    llama = load_llama(path, embedding=True, n_ctx=512, n_batch=512, n_ubatch=512)
    yield llama
    llama.close()


def unit(vector) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    return v / np.linalg.norm(v)


def post(server, **body) -> httpx.Response:
    return httpx.post(server.base_url + "/embeddings", json=body, timeout=300)


def test_vectors_match_llama_cpp_own_embeddings(oai, reference) -> None:
    reply = oai.embeddings.create(model=E5, input=TEXTS, encoding_format="float")
    assert [d.index for d in reply.data] == list(range(len(TEXTS)))
    for text, item in zip(TEXTS, reply.data, strict=True):
        ours = np.asarray(item.embedding)
        assert ours.shape == (384,) and abs(np.linalg.norm(ours) - 1) < 1e-4  # unit length, as OpenAI's
        cosine = float(ours @ unit(reference.embed(text)))
        assert cosine >= 0.999, (text, cosine)
    expected_tokens = sum(len(reference.tokenize(t.encode())) for t in TEXTS)
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == expected_tokens
    assert reply.model == E5


def test_a_batch_of_64_matches_single_requests(oai) -> None:
    texts = [f"第{i}句：the weather in city number {i} is {'sunny' if i % 2 else 'rainy'}." for i in range(64)]
    batch = oai.embeddings.create(model=E5, input=texts, encoding_format="float")
    assert len(batch.data) == 64 and [d.index for d in batch.data] == list(range(64))
    for i in (0, 17, 63):
        single = oai.embeddings.create(model=E5, input=texts[i], encoding_format="float").data[0].embedding
        assert float(np.dot(batch.data[i].embedding, single)) >= 0.999


def test_base64_is_little_endian_float32_and_the_client_decodes_it(oai, server) -> None:
    floats = oai.embeddings.create(model=E5, input=TEXTS[:3], encoding_format="float")
    decoded = oai.embeddings.create(model=E5, input=TEXTS[:3])  # the client asks for base64, decodes
    raw = oai.embeddings.create(model=E5, input=TEXTS[:3], encoding_format="base64")
    for f, d, r in zip(floats.data, decoded.data, raw.data, strict=True):
        from_b64 = np.frombuffer(base64.b64decode(r.embedding), dtype="<f4")
        assert np.allclose(from_b64, f.embedding, atol=1e-6)
        assert np.allclose(d.embedding, f.embedding, atol=1e-6)


def test_similar_sentences_are_closer_in_chinese_english_and_across(oai) -> None:
    texts = [
        "猫坐在垫子上",
        "一只猫在垫子上",
        "股票市场今天下跌",
        "The cat sits on the mat",
        "A cat is sitting on a mat",
        "Stock markets fell today",
    ]
    v = np.array([d.embedding for d in oai.embeddings.create(model=E5, input=texts, encoding_format="float").data])
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.05  # zh: same meaning vs unrelated
    assert sim[3, 4] > sim[3, 5] + 0.05  # en
    assert sim[0, 3] > sim[0, 5] and sim[2, 5] > sim[2, 3]  # across languages


def test_token_id_inputs_equal_their_text(server, reference) -> None:
    ids = [reference.tokenize(t.encode()) for t in TEXTS[:2]]
    by_ids = post(server, input=ids).json()["data"]
    by_text = post(server, input=TEXTS[:2]).json()["data"]
    for a, b in zip(by_ids, by_text, strict=True):
        assert float(np.dot(a["embedding"], b["embedding"])) >= 0.9999
    one = post(server, input=ids[0]).json()  # a single token-id list
    assert len(one["data"]) == 1 and one["usage"]["prompt_tokens"] == len(ids[0])


def test_models_lists_the_embedding_model(oai) -> None:
    ids = {m.id for m in oai.models.list().data}
    assert ids == {SMOLLM, E5}


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": []}, "input", "at least one"),
        ({"input": ""}, "input", "empty"),
        ({"input": [[]]}, "input", "empty"),
        ({"input": ["a", 1]}, "input", "list of strings"),
        ({"input": [True]}, "input", "list of strings"),
        ({"input": 5}, "input", "must be a string"),
        ({"input": [[1, 2], [999999]]}, "input", "vocabulary"),
        ({"input": [-1]}, "input", "vocabulary"),
        ({"input": "hello " * 600}, "input", "at most 512 tokens"),
        ({"input": ["x"] * 2049}, "input", "at most 2048"),
        ({"input": "x", "model": "text-embedding-3-small"}, "model", "does not serve embeddings"),
        ({"input": "x", "model": SMOLLM}, "model", "does not serve embeddings"),
        ({"input": "x", "dimensions": 128}, "dimensions", "not a Matryoshka"),
        ({"input": "x", "dimensions": 0}, "dimensions", ""),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format", ""),
        ({"input": "x", "input_type": "query"}, "input_type", "not permitted"),
        ({"input": "x", "user": "u" * 300}, "user", ""),
    ],
)
def test_bad_requests_are_400_naming_the_field(server, body, param, words) -> None:
    r = post(server, **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and words in error["message"], error
    if param == "model":
        assert error["code"] == "model_not_found"


def test_an_input_of_exactly_the_model_context_fits_and_one_more_token_does_not(server, reference) -> None:
    longest = " ".join(["word"] * 510)
    assert len(reference.tokenize(longest.encode())) == 512  # <s>, 510 words, </s>
    r = post(server, input=[longest, "short"])
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 512 + len(reference.tokenize(b"short"))
    r = post(server, input=["short", longest + " word"])
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("input[1] has 513 tokens")


def test_a_lone_surrogate_is_a_400_not_a_crash(server) -> None:
    raw = b'{"input": ["ok", "a\\ud800b"]}'  # valid JSON, but not encodable text
    r = httpx.post(server.base_url + "/embeddings", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "lone surrogate" in r.json()["error"]["message"], r.text


def test_dimensions_equal_to_the_model_size_and_user_are_accepted(server) -> None:
    r = post(server, input="你好", dimensions=384, user="end-user-7")
    assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 384


def test_embeddings_can_be_turned_off(tmp_path) -> None:
    server = start_server(tmp_path, SMOLLM, "--n-ctx", "512", "--embedding-model", "none")
    try:
        r = post(server, input="hi")
        assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_found"
        models = httpx.get(server.base_url + "/models").json()["data"]
        assert [m["id"] for m in models] == [SMOLLM]
    finally:
        stop_server(server)


def test_the_gguf_normalizes_text_as_the_model_was_trained(reference) -> None:
    """The charsmap built from the package's normalization table works inside llama.cpp."""

    def tokens(text: str) -> list[int]:
        return reference.tokenize(text.encode())

    assert tokens("你好，世界？（测试）") == tokens("你好,世界?(测试)")  # full-width punctuation folded
    assert tokens("ｈｅｌｌｏ　ｗｏｒｌｄ") == tokens("hello world")  # full-width letters and space
    assert tokens("a\u0001b") == tokens("ab")  # control characters dropped
    assert tokens("hello   world ") == tokens("hello world")  # extra whitespace removed


def test_an_added_embedding_gguf_is_served_by_name(tmp_path, reference) -> None:
    """`mingyan models add` a GGUF embedding model, then `--embedding-model` its name."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import mingyan_env

    copy = tmp_path / "My-E5.gguf"
    shutil.copyfile(reference.model_path, copy)
    added = subprocess.run(
        [sys.executable, "-m", "mingyan", "models", "add", str(copy), "--name", "my-e5"],
        env=mingyan_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr
    server = start_server(tmp_path, SMOLLM, "--n-ctx", "512", "--embedding-model", "my-e5")
    try:
        assert [m["id"] for m in httpx.get(server.base_url + "/models").json()["data"]] == [SMOLLM, "my-e5"]
        r = post(server, model="my-e5", input="你好")
        assert r.status_code == 200 and r.json()["model"] == "my-e5"
        assert float(np.dot(r.json()["data"][0]["embedding"], unit(reference.embed("你好")))) >= 0.999
    finally:
        stop_server(server)


def test_a_chat_model_is_refused_as_the_embedding_model(tmp_path) -> None:
    with pytest.raises(RuntimeError) as failed:
        start_server(tmp_path, SMOLLM, "--n-ctx", "512", "--embedding-model", SMOLLM)
    assert f"cannot serve {SMOLLM!r} as the embedding model: it is not an embedding model" in str(failed.value)


def test_a_client_that_disconnects_stops_its_work(server) -> None:
    """A huge request (minutes of work on a small CPU) is abandoned; the next one is served soon."""
    import time

    huge = [f"{i} " + "word " * 195 for i in range(1400)]  # ~280,000 tokens
    with pytest.raises(httpx.TimeoutException):
        httpx.post(server.base_url + "/embeddings", json={"input": huge}, timeout=2)
    start = time.monotonic()
    r = post(server, input="你好")
    assert r.status_code == 200 and time.monotonic() - start < 60


def test_a_short_request_does_not_wait_for_a_long_one(server) -> None:
    """Requests take turns, one decode each: a query is answered while a big batch is still running."""
    import threading
    import time

    big = [f"{i} " + "word " * 195 for i in range(600)]  # ~120,000 tokens: minutes on a small CPU
    outcome: list[str] = []

    def send_big() -> None:
        try:
            httpx.post(server.base_url + "/embeddings", json={"input": big}, timeout=40)
            outcome.append("finished")
        except httpx.TimeoutException:
            outcome.append("timed out")  # disconnects: the server drops the rest of the work

    thread = threading.Thread(target=send_big)
    thread.start()
    time.sleep(3)
    start = time.monotonic()
    r = post(server, input="query: 北京的人口是多少？")
    waited = time.monotonic() - start
    still_running = thread.is_alive()
    thread.join()
    assert r.status_code == 200
    # Served while the big request still ran (it would otherwise have waited for its 40 s timeout).
    assert still_running, (waited, outcome)
