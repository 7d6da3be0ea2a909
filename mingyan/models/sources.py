"""Where `pull` downloads from: an http(s) URL, or a Hugging Face `owner/repo/path/file.gguf[@rev]`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from mingyan.errors import ModelError

SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Source:
    url: str
    filename: str  # last path component, used for the default model name


def _from_url(source: str) -> Source:
    parts = urlsplit(source)
    if parts.scheme.lower() not in SCHEMES:
        raise ModelError(f"refusing to download from {parts.scheme}:// URLs; use http:// or https://")
    if not parts.hostname:
        raise ModelError(f"URL {source!r} has no host")
    return Source(url=source, filename=unquote(parts.path.rstrip("/").rpartition("/")[2]))


def _from_hub(source: str, endpoint: str) -> Source:
    reference, at, revision = source.partition("@")
    pieces = reference.split("/")
    if len(pieces) < 3 or any(p in ("", ".", "..") for p in pieces) or (at and not revision):
        raise ModelError(
            f"cannot pull {source!r}: give an http(s) URL or a Hugging Face reference "
            "owner/repo/path/file.gguf[@revision] (to register a local file, use `models add`)"
        )
    if urlsplit(endpoint).scheme.lower() not in SCHEMES:
        raise ModelError(f"hf_endpoint {endpoint!r} must be an http:// or https:// URL")
    owner, repo, *path = pieces
    url = "/".join(
        [
            endpoint.rstrip("/"),
            quote(owner),
            quote(repo),
            "resolve",
            quote(revision or "main", safe=""),
            *(quote(p) for p in path),
        ]
    )
    return Source(url=url, filename=path[-1])


def parse_source(source: str, hf_endpoint: str) -> Source:
    """Map a pull source to the URL to download."""
    source = source.strip()
    if "://" in source:
        return _from_url(source)
    if ":" in source.split("/")[0]:  # e.g. file:/x, ftp:host
        raise ModelError(f"refusing to download {source!r}: only http:// and https:// are supported")
    return _from_hub(source, hf_endpoint)
