"""`pull` against a real HTTP server on 127.0.0.1 serving a real (small) GGUF file."""

from __future__ import annotations

import argparse
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gguf
import httpx
import numpy as np
import pytest

from mingyan.cli import models as cli
from mingyan.config import Settings
from mingyan.errors import ModelError
from mingyan.models.download import Downloader
from mingyan.models.registry import ModelRegistry


def make_gguf(path: Path) -> bytes:
    """A real GGUF file of a few KB (llama architecture, chat template, two tensors)."""
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("Tiny Pulled")
    writer.add_context_length(128)
    writer.add_chat_template("{{ messages[0].content }}")
    writer.add_eos_token_id(2)
    writer.add_tensor("a", np.arange(1024, dtype=np.float32).reshape(16, 64))
    writer.add_tensor("b", np.ones((8, 64), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@dataclass
class Behaviour:
    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    honour_range: bool = True
    drop_after: int | None = None  # the next response stops after this many body bytes
    etag: str | None = None
    stall_s: float = 0.0
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        state: Behaviour = self.server.behaviour  # type: ignore[attr-defined]
        state.requests.append((self.path, self.headers.get("Range")))
        time.sleep(state.stall_s)
        if self.path in state.redirects:
            location, headers = state.redirects[self.path]
            return self._reply(302, b"", {"Location": location, **headers})
        body = state.files.get(self.path)
        if body is None:
            return self._reply(404, b"not found", {})
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        headers = {"ETag": f'"{state.etag}"'} if state.etag else {}
        if not (match and state.honour_range):
            return self._reply(200, body, headers)
        start = int(match.group(1))
        if start >= len(body):
            return self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
        headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        self._reply(206, body[start:], headers)

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        state: Behaviour = self.server.behaviour  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if state.drop_after is not None and status in (200, 206):
            body, state.drop_after = body[: state.drop_after], None
            self.close_connection = True
        self.wfile.write(body)


@dataclass
class Server:
    base: str
    behaviour: Behaviour
    model: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.model).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    model = make_gguf(tmp_path / "source.gguf")
    behaviour = Behaviour(files={"/files/tiny.gguf": model, "/files/page.gguf": b"<!doctype html><p>login"})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.behaviour = behaviour  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", behaviour, model)
    httpd.shutdown()
    httpd.server_close()


def make_registry(tmp_path: Path, server: Server, attempts: int = 3, **kwargs: object) -> ModelRegistry:
    downloader = Downloader(progress=False, attempts=attempts, backoff_s=0, **kwargs)  # type: ignore[arg-type]
    return ModelRegistry(
        tmp_path / "data", tmp_path / "cache", hf_endpoint=f"{server.base}/hf", progress=False, downloader=downloader
    )


def one_line(error: pytest.ExceptionInfo[ModelError]) -> str:
    assert "\n" not in str(error.value)
    return str(error.value)


def added(registry) -> list:
    """The models a user added or pulled (the shipped ones, chat and embedding, aside)."""
    return [e for e in registry.list() if e.source != "shipped"]


def leftovers(registry: ModelRegistry) -> list[str]:
    return sorted(p.name for p in registry.models_dir.glob("*")) if registry.models_dir.exists() else []


def test_pull_downloads_verifies_and_registers(tmp_path: Path, server: Server) -> None:
    registry = make_registry(tmp_path, server)
    entry = registry.pull(f"{server.base}/files/tiny.gguf")
    assert (entry.name, entry.source, entry.sha256) == ("tiny", "pulled", server.sha256)
    assert entry.path == registry.models_dir / "tiny.gguf" and entry.path.read_bytes() == server.model
    assert leftovers(registry) == ["tiny.gguf"]
    assert registry.list()[-1] == entry and registry.resolve("tiny") == entry
    assert registry.info("tiny")["general.name"] == "Tiny Pulled"
    registry.remove("tiny")
    assert leftovers(registry) == [] and added(registry) == []


def test_interrupted_download_resumes_with_range(tmp_path: Path, server: Server) -> None:
    server.behaviour.drop_after = 1000
    entry = make_registry(tmp_path, server).pull(f"{server.base}/files/tiny.gguf", sha256=server.sha256.upper())
    assert entry.path.read_bytes() == server.model
    assert [r for _, r in server.behaviour.requests] == [None, "bytes=1000-"]


def test_resume_in_a_later_call(tmp_path: Path, server: Server) -> None:
    server.behaviour.drop_after = 1500
    with pytest.raises(ModelError) as error:
        make_registry(tmp_path, server, attempts=1).pull(f"{server.base}/files/tiny.gguf", name="later")
    assert "run the same command again to resume" in one_line(error)
    registry = make_registry(tmp_path, server)
    assert (registry.models_dir / "later.gguf.part").stat().st_size == 1500 and added(registry) == []
    assert registry.pull(f"{server.base}/files/tiny.gguf", name="later").sha256 == server.sha256
    assert server.behaviour.requests[-1][1] == "bytes=1500-"
    assert leftovers(registry) == ["later.gguf"]


def test_server_ignoring_range_still_gives_the_right_file(tmp_path: Path, server: Server) -> None:
    server.behaviour.honour_range = False
    server.behaviour.drop_after = 1000
    entry = make_registry(tmp_path, server).pull(f"{server.base}/files/tiny.gguf")
    assert entry.path.read_bytes() == server.model and entry.sha256 == server.sha256
    assert [r for _, r in server.behaviour.requests] == [None, "bytes=1000-"]


def test_complete_part_answered_with_416_is_used(tmp_path: Path, server: Server) -> None:
    server.behaviour.drop_after = len(server.model) - 1
    with pytest.raises(ModelError):
        make_registry(tmp_path, server, attempts=1).pull(f"{server.base}/files/tiny.gguf")
    part = tmp_path / "data" / "models" / "tiny.gguf.part"
    part.write_bytes(server.model)  # the last byte arrived after all
    assert make_registry(tmp_path, server).pull(f"{server.base}/files/tiny.gguf").sha256 == server.sha256
    assert server.behaviour.requests[-1][1] == f"bytes={len(server.model)}-"


def test_sha256_mismatch_leaves_nothing(tmp_path: Path, server: Server) -> None:
    registry = make_registry(tmp_path, server)
    with pytest.raises(ModelError) as error:
        registry.pull(f"{server.base}/files/tiny.gguf", sha256="0" * 64)
    assert f"expected {'0' * 64}, got {server.sha256}" in one_line(error)
    assert leftovers(registry) == [] and added(registry) == []
    with pytest.raises(ModelError) as error:
        registry.pull(f"{server.base}/files/tiny.gguf", sha256="abc")
    assert "64 hexadecimal" in one_line(error)


def test_etag_that_looks_like_sha256_is_checked(tmp_path: Path, server: Server) -> None:
    registry = make_registry(tmp_path, server)
    server.behaviour.etag = "f" * 64
    with pytest.raises(ModelError) as error:
        registry.pull(f"{server.base}/files/tiny.gguf")
    assert "ETag says" in one_line(error) and leftovers(registry) == []
    server.behaviour.etag = server.sha256
    assert registry.pull(f"{server.base}/files/tiny.gguf").sha256 == server.sha256


def test_hugging_face_reference_maps_to_resolve_url(tmp_path: Path, server: Server) -> None:
    files = server.behaviour.files
    files["/hf/owner/repo/resolve/main/tiny.gguf"] = server.model
    files["/hf/owner/repo/resolve/v1.0/sub/dir/Tiny-Q8.gguf"] = server.model
    registry = make_registry(tmp_path, server)
    assert registry.pull("owner/repo/tiny.gguf").name == "tiny"
    assert registry.pull("owner/repo/sub/dir/Tiny-Q8.gguf@v1.0").name == "tiny-q8"
    # Hugging Face answers with a redirect to its CDN and the sha256 in X-Linked-Etag.
    server.behaviour.redirects["/hf/o/r/resolve/main/x.gguf"] = (
        f"{server.base}/files/tiny.gguf",
        {"X-Linked-Etag": f'"{"e" * 64}"'},
    )
    with pytest.raises(ModelError) as error:
        registry.pull("o/r/x.gguf")
    assert "e" * 64 in one_line(error)


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc/passwd", "..", "A B"])
def test_hostile_names_are_refused_before_any_request(tmp_path: Path, server: Server, name: str) -> None:
    with pytest.raises(ModelError) as error:
        make_registry(tmp_path, server).pull(f"{server.base}/files/tiny.gguf", name=name)
    assert "invalid model name" in one_line(error)
    assert server.behaviour.requests == [] and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("file:///etc/passwd", "refusing to download from file://"),
        ("ftp://example.com/m.gguf", "refusing to download from ftp://"),
        ("/abs/path/model.gguf", "Hugging Face reference"),
        ("owner/repo", "Hugging Face reference"),
        ("owner/../x.gguf", "Hugging Face reference"),
        ("http://127.0.0.1:1/files/..", "cannot derive a model name"),
    ],
)
def test_bad_sources_are_refused(tmp_path: Path, server: Server, source: str, expected: str) -> None:
    with pytest.raises(ModelError) as error:
        make_registry(tmp_path, server).pull(source)
    assert expected in one_line(error)


def test_http_errors_are_one_clear_line(tmp_path: Path, server: Server) -> None:
    registry = make_registry(tmp_path, server)
    with pytest.raises(ModelError) as error:
        registry.pull(f"{server.base}/files/missing.gguf")
    assert "HTTP 404" in one_line(error) and "missing.gguf" in str(error.value)
    server.behaviour.redirects["/files/evil.gguf"] = ("file:///etc/passwd", {})
    with pytest.raises(ModelError) as error:
        registry.pull(f"{server.base}/files/evil.gguf")
    assert "cannot download" in one_line(error)
    with pytest.raises(ModelError) as error:
        registry.pull("http://127.0.0.1:1/closed.gguf")
    assert "failed after 3 attempts (ConnectError" in one_line(error)


def test_read_timeout_is_reported(tmp_path: Path, server: Server) -> None:
    server.behaviour.stall_s = 1.0
    registry = make_registry(tmp_path, server, attempts=1, timeout=httpx.Timeout(0.2))
    with pytest.raises(ModelError) as error:
        registry.pull(f"{server.base}/files/tiny.gguf")
    assert "ReadTimeout" in one_line(error)


def test_non_gguf_content_is_refused(tmp_path: Path, server: Server) -> None:
    registry = make_registry(tmp_path, server)
    with pytest.raises(ModelError) as error:
        registry.pull(f"{server.base}/files/page.gguf")
    assert "is not a GGUF model file" in one_line(error)
    assert leftovers(registry) == [] and added(registry) == []


def test_cli_pull(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.behaviour.files["/hf/o/r/resolve/main/tiny.gguf"] = server.model
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", hf_endpoint=f"{server.base}/hf")
    parser = argparse.ArgumentParser(prog="mingyan")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", "pull", "o/r/tiny.gguf", "--name", "T1", "--sha256", server.sha256])
    assert args.handler(args, settings) == 0
    assert capsys.readouterr().out.startswith(f"pulled t1: {tmp_path / 'data' / 'models' / 't1.gguf'}")
