"""The index of user models, `data_dir/models.json`, read whole and written atomically."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mingyan.errors import ModelError
from mingyan.models.files import atomic_write_text, one_line

INDEX_VERSION = 1


@dataclass(frozen=True)
class UserModel:
    """A model the user added (a file of theirs) or pulled (a file we downloaded into data_dir)."""

    name: str
    path: Path
    sha256: str
    source: str  # "added" | "pulled"
    size: int
    mtime_ns: int
    origin: str  # where it came from: the path given to `add`, or the URL pulled
    license: str | None = None


def _decode(raw: dict[str, object]) -> UserModel:
    fields = dict(raw)
    fields["path"] = Path(str(fields["path"]))
    return UserModel(**fields)  # type: ignore[arg-type]


class ModelIndex:
    """Load and save the user-model index at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, UserModel]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ModelError(f"cannot read model index {self.path}: {one_line(exc)}") from exc
        try:
            document = json.loads(text)
            models = [_decode(raw) for raw in document["models"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"model index {self.path} is damaged ({one_line(exc)}); fix or delete it") from exc
        return {model.name: model for model in models}

    def save(self, models: dict[str, UserModel]) -> None:
        records = []
        for model in sorted(models.values(), key=lambda m: m.name):
            record = asdict(model)
            record["path"] = str(model.path)
            records.append(record)
        text = json.dumps({"version": INDEX_VERSION, "models": records}, indent=2, ensure_ascii=False)
        try:
            atomic_write_text(self.path, text + "\n")
        except OSError as exc:
            raise ModelError(f"cannot write model index {self.path}: {one_line(exc)}") from exc
