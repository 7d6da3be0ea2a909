"""The model registry: one place that knows every model's name, file and checksum.

Shipped models are pinned in `shipped.py` and assembled into `cache_dir/models/` on first use.
User models live in the index `data_dir/models.json`: files the user `add`s stay where they are;
files they `pull` are downloaded into `data_dir/models/`. Every file is verified by sha256 before
`resolve` hands it out; verification results are remembered (sidecar or index: size + mtime_ns) so
an unchanged file is not hashed again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mingyan.errors import ModelError
from mingyan.models import files, gguf_info
from mingyan.models.assemble import assemble
from mingyan.models.download import Downloader
from mingyan.models.index import ModelIndex, UserModel
from mingyan.models.names import check_name, name_from_filename
from mingyan.models.shipped import (
    ShippedModel,
    locate_parts,
    parts_installed,
    shipped_models,
)
from mingyan.models.sources import parse_source
from mingyan.models.verified import is_verified, record_verified

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model. `available`: usable without a download."""

    name: str
    path: Path
    sha256: str
    source: str  # "shipped" | "added" | "pulled"
    size: int | None
    license: str | None
    available: bool
    kind: str = "chat"  # "embedding" for shipped embedding models; user models are not inspected here


class ModelRegistry:
    """Shipped, added and pulled GGUF models. Methods raise ModelError with a one-line message."""

    def __init__(
        self,
        data_dir: Path,
        cache_dir: Path,
        hf_endpoint: str = "https://huggingface.co",
        progress: bool = True,
        *,
        shipped: Sequence[ShippedModel] | None = None,
        downloader: Downloader | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir)
        self.hf_endpoint = hf_endpoint
        self.progress = progress
        self._shipped = {m.name: m for m in (shipped_models() if shipped is None else shipped)}
        self._index = ModelIndex(self.data_dir / "models.json")
        self._downloader = downloader or Downloader(progress=progress)

    @property
    def models_dir(self) -> Path:
        """Where pulled files go."""
        return self.data_dir / "models"

    def shipped_path(self, name: str) -> Path:
        return self.cache_dir / "models" / f"{name}.gguf"

    def list(self) -> list[ModelEntry]:
        """Shipped models first, then user models by name. Cheap: never assembles or hashes."""
        shipped = [self._shipped_entry(m, available=None) for m in self._shipped.values()]
        users = sorted(self._index.load().values(), key=lambda m: m.name)
        return shipped + [_user_entry(m, available=m.path.is_file()) for m in users]

    def resolve(self, name: str) -> ModelEntry:
        """The entry of a model whose file exists and is verified (assembling a shipped one if needed)."""
        key = name.strip().lower()
        if key in self._shipped:
            model = self._shipped[key]
            self._ensure_shipped(model)
            return self._shipped_entry(model, available=True)
        return _user_entry(self._ensure_user(self._user(key)), available=True)

    def add(self, path: Path, name: str | None = None) -> ModelEntry:
        """Register an existing local GGUF file (it stays where it is)."""
        file = Path(path).expanduser().resolve()
        if not file.is_file():
            raise ModelError(f"no such file: {file}")
        header = gguf_info.read_header(file)
        key = check_name(name) if name is not None else name_from_filename(file.name)
        existing = self._index.load().get(key)
        if not (existing and existing.source == "added" and existing.path == file):
            self._check_free(key)
        digest = files.sha256_file(file, self.progress)
        stat = file.stat()
        model = UserModel(
            name=key,
            path=file,
            sha256=digest,
            source="added",
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            origin=str(file),
            license=_license(header),
        )
        self._store(model)
        return _user_entry(model, available=True)

    def pull(self, source: str, name: str | None = None, sha256: str | None = None) -> ModelEntry:
        """Download a GGUF file into data_dir/models and register it."""
        where = parse_source(source, self.hf_endpoint)
        key = check_name(name) if name is not None else name_from_filename(where.filename)
        expected = _check_sha256(sha256)
        self._check_free(key)
        dest = self.models_dir / f"{key}.gguf"
        done = self._downloader.fetch(where.url, dest, expected)
        stat = dest.stat()
        model = UserModel(
            name=key,
            path=dest,
            sha256=done.sha256,
            source="pulled",
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            origin=where.url,
            license=_license(gguf_info.read_header(dest)),
        )
        self._store(model)
        return _user_entry(model, available=True)

    def remove(self, name: str) -> None:
        """Unregister a user model; delete its file only if it was pulled into data_dir/models."""
        key = name.strip().lower()
        if key in self._shipped:
            raise ModelError(f"{key!r} is shipped with mingyan and cannot be removed")
        model = self._user(key)
        models = self._index.load()
        models.pop(key, None)
        self._index.save(models)
        if model.source == "pulled" and model.path.resolve().parent == self.models_dir.resolve():
            try:
                model.path.unlink(missing_ok=True)
            except OSError as exc:
                raise ModelError(f"unregistered {key!r} but cannot delete {model.path}: {files.one_line(exc)}") from exc

    def info(self, name: str) -> dict[str, object]:
        """Registry facts plus GGUF header metadata (resolves the model first: needs its file)."""
        entry = self.resolve(name)
        header = gguf_info.read_header(entry.path)
        facts: dict[str, object] = {
            "name": entry.name,
            "path": str(entry.path),
            "sha256": entry.sha256,
            "size": entry.size,
            "source": entry.source,
            "license": entry.license,
        }
        return facts | gguf_info.summarize(header)

    def _shipped_entry(self, model: ShippedModel, available: bool | None) -> ModelEntry:
        path = self.shipped_path(model.name)
        if available is None:
            available = is_verified(path, model.sha256) or parts_installed(model)
        return ModelEntry(model.name, path, model.sha256, "shipped", model.size, model.license, available, model.kind)

    def _ensure_shipped(self, model: ShippedModel) -> None:
        path = self.shipped_path(model.name)
        if is_verified(path, model.sha256):
            return
        if path.is_file() and path.stat().st_size == model.size:
            if files.sha256_file(path, self.progress) == model.sha256:
                record_verified(path, model.sha256)
                return
        assemble(model, locate_parts(model), path, self.progress)

    def _user(self, key: str) -> UserModel:
        model = self._index.load().get(key)
        if model is None:
            known = ", ".join([*self._shipped, *sorted(self._index.load())])
            raise ModelError(f"unknown model {key!r}; known models: {known}")
        return model

    def _ensure_user(self, model: UserModel) -> UserModel:
        try:
            stat = model.path.stat()
        except OSError:
            raise ModelError(
                f"model {model.name!r}: its file {model.path} is missing; restore it or "
                f"run: mingyan models rm {model.name}"
            ) from None
        if stat.st_size == model.size and stat.st_mtime_ns == model.mtime_ns:
            return model
        digest = files.sha256_file(model.path, self.progress)
        if digest != model.sha256:
            redo = f"add {model.path}" if model.source == "added" else f"pull {model.origin}"
            raise ModelError(
                f"model {model.name!r}: {model.path} changed since it was {model.source} "
                f"(sha256 {digest}, registered {model.sha256}); to use it as it is now, run "
                f"`mingyan models rm {model.name}` then `mingyan models {redo} --name {model.name}`"
            )
        updated = replace(model, mtime_ns=stat.st_mtime_ns)
        self._store(updated)
        return updated

    def _check_free(self, key: str) -> None:
        if key in self._shipped:
            raise ModelError(f"{key!r} is the name of a shipped model; choose another --name")
        existing = self._index.load().get(key)
        if existing is not None:
            raise ModelError(
                f"a model named {key!r} is already registered ({existing.source} from "
                f"{existing.origin}); remove it first: mingyan models rm {key}"
            )

    def _store(self, model: UserModel) -> None:
        models = self._index.load()
        models[model.name] = model
        self._index.save(models)


def _user_entry(model: UserModel, available: bool) -> ModelEntry:
    return ModelEntry(model.name, model.path, model.sha256, model.source, model.size, model.license, available)


def _license(header: gguf_info.GGUFHeader) -> str | None:
    value = header.metadata.get("general.license")
    return value if isinstance(value, str) and value else None


def _check_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.strip().lower()
    if not _SHA256.match(digest):
        raise ModelError(f"--sha256 must be 64 hexadecimal characters, got {value!r}")
    return digest
