"""Resumable, verified HTTP download of one GGUF file.

The file grows as `<dest>.part` (with `<dest>.part.json` recording the URL and the server's
validator), so an interrupted download resumes with an HTTP Range request, in this call (a few
automatic retries) or in a later one. `dest` appears only after every check passes: the sha256 the
user gave, the sha256 the server advertises in `X-Linked-Etag`/`ETag` (Hugging Face does), the GGUF
magic, and a readable header whose tensors fit in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mingyan.errors import ModelError
from mingyan.models import files, gguf_info

TIMEOUT = httpx.Timeout(connect=15.0, read=60.0, write=60.0, pool=15.0)
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_HINTS = {
    401: " (the repository may be private or gated: it needs a login this client does not send)",
    403: " (the repository may be private or gated: it needs a login this client does not send)",
    404: " (check the owner, repository, file name and revision)",
}


class _BadContent(ModelError):
    """The bytes arrived but are not what was asked for; the partial file must go."""


class _Restart(Exception):
    """The partial file cannot be resumed; it was discarded."""


@dataclass(frozen=True)
class Downloaded:
    sha256: str
    size: int


def advertised_sha256(response: httpx.Response) -> str | None:
    """A sha256 the server vouches for: a 64-hex strong X-Linked-Etag or ETag, on any hop."""
    for hop in (*response.history, response):
        for header in ("x-linked-etag", "etag"):
            value = hop.headers.get(header, "").strip()
            if value.startswith("W/"):
                continue
            value = value.strip('"').lower()
            if SHA256_PATTERN.match(value):
                return value
    return None


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code not in (200, 206):
        code = response.status_code
        raise ModelError(f"download failed: HTTP {code} {response.reason_phrase} for {url}{_HINTS.get(code, '')}")


def _range_start(response: httpx.Response) -> int | None:
    match = re.match(r"bytes\s+(\d+)-", response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def _range_total(response: httpx.Response) -> int | None:
    match = re.match(r"bytes\s+\*/(\d+)", response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


class Downloader:
    """Downloads URLs into files; `transport` lets callers route requests (e.g. through a proxy)."""

    def __init__(
        self,
        progress: bool = True,
        attempts: int = 3,
        backoff_s: float = 1.0,
        timeout: httpx.Timeout = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.progress = progress
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout = timeout
        self.transport = transport

    def fetch(self, url: str, dest: Path, expected_sha256: str | None = None) -> Downloaded:
        """Download `url` to `dest`, verified; ModelError (one line) on any failure."""
        part = dest.with_name(dest.name + ".part")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest, advertised = self._download(url, part)
            self._verify(part, url, digest, expected_sha256, advertised)
            size = part.stat().st_size
            os.replace(part, dest)
        except _BadContent:
            _discard(part)
            raise
        except OSError as exc:
            raise ModelError(f"cannot write {part}: {files.one_line(exc)}") from exc
        _meta_path(part).unlink(missing_ok=True)
        return Downloaded(sha256=digest, size=size)

    def _client(self) -> httpx.Client:
        return httpx.Client(
            follow_redirects=True,
            timeout=self.timeout,
            transport=self.transport,
            headers={"user-agent": "mingyan", "accept-encoding": "identity"},
        )

    def _download(self, url: str, part: Path) -> tuple[str, str | None]:
        with self._client() as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    return self._attempt(client, url, part)
                except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.TooManyRedirects) as exc:
                    raise ModelError(f"cannot download {url}: {files.one_line(exc)}") from exc
                except httpx.TransportError as exc:
                    if attempt == self.attempts:
                        raise ModelError(
                            f"download of {url} failed after {attempt} attempts "
                            f"({type(exc).__name__}: {files.one_line(exc) or 'no detail'}); "
                            "run the same command again to resume"
                        ) from exc
                    time.sleep(self.backoff_s * attempt)
        raise AssertionError("unreachable")

    def _attempt(self, client: httpx.Client, url: str, part: Path) -> tuple[str, str | None]:
        offset, validator = _resume_state(part, url)
        headers = {}
        if offset:
            headers["range"] = f"bytes={offset}-"
            if validator:
                headers["if-range"] = validator
        with client.stream("GET", url, headers=headers) as response:
            try:
                if response.status_code == 416 and offset:
                    return _already_complete(response, part, offset)
                _check_status(response, url)
                start = offset if response.status_code == 206 else 0
                if response.status_code == 206 and _range_start(response) != offset:
                    raise _Restart
                _save_resume_state(part, url, response)
                return self._receive(response, part, start), advertised_sha256(response)
            except _Restart:
                _discard(part)
        return self._attempt(client, url, part)

    def _receive(self, response: httpx.Response, part: Path, start: int) -> str:
        hasher = hashlib.sha256()
        if start:
            files.hash_into(hasher, part)
        length = response.headers.get("content-length", "")
        total = start + int(length) if length.isdigit() else None
        head = gguf_info.MAGIC if start else b""
        desc = f"downloading {part.name.removesuffix('.gguf.part')}"
        with (
            part.open("ab" if start else "wb") as out,
            files.progress_bar(total, desc, self.progress, initial=start) as bar,
        ):
            for chunk in response.iter_bytes():  # as received: a chunk size would buffer
                if len(head) < 4:
                    head += chunk[: 4 - len(head)]
                    _check_magic(head, response.url)
                out.write(chunk)
                hasher.update(chunk)
                bar.update(len(chunk))
        return hasher.hexdigest()

    def _verify(self, part: Path, url: str, digest: str, expected: str | None, advertised: str | None) -> None:
        if expected and digest != expected:
            raise _BadContent(f"sha256 mismatch for {url}: expected {expected}, got {digest}")
        if advertised and digest != advertised:
            raise _BadContent(f"sha256 mismatch for {url}: the server's ETag says {advertised}, got {digest}")
        if not gguf_info.starts_with_magic(part):
            raise _BadContent(f"{url} is not a GGUF model file (it does not start with b'GGUF')")
        try:
            gguf_info.read_header(part)
        except ModelError as exc:
            raise _BadContent(f"{url}: {exc}") from None


def _check_magic(head: bytes, url: object) -> None:
    if not gguf_info.MAGIC.startswith(head[:4]):
        raise _BadContent(f"{url} is not a GGUF model file (it starts with {head[:4]!r})")


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _meta_path(part).unlink(missing_ok=True)


def _resume_state(part: Path, url: str) -> tuple[int, str | None]:
    """Bytes already downloaded from `url`, and the validator for If-Range; stale parts are dropped."""
    try:
        meta = json.loads(_meta_path(part).read_text(encoding="utf-8"))
        size = part.stat().st_size
    except (OSError, ValueError):
        _discard(part)
        return 0, None
    if not isinstance(meta, dict) or meta.get("url") != url:
        _discard(part)
        return 0, None
    validator = meta.get("validator")
    return size, validator if isinstance(validator, str) else None


def _save_resume_state(part: Path, url: str, response: httpx.Response) -> None:
    etag = response.headers.get("etag", "")
    validator = etag if etag and not etag.startswith("W/") else response.headers.get("last-modified")
    files.atomic_write_text(_meta_path(part), json.dumps({"url": url, "validator": validator}))


def _already_complete(response: httpx.Response, part: Path, offset: int) -> tuple[str, str | None]:
    """A 416 answer to a Range request: fine if the part already holds the whole file."""
    if _range_total(response) != offset:
        raise _Restart
    hasher = hashlib.sha256()
    files.hash_into(hasher, part)
    return hasher.hexdigest(), advertised_sha256(response)
