"""`mingyan serve --config FILE`: settings from a TOML file (docs/deploy.md, "A config file").

Its keys are the flags' names without the dashes (`n-ctx = 2048`; `n_ctx` is read the same), and a
`[[models]]` array of tables takes the place of repeated `--model` / `--upstream`: each has a
`name`, and a served-elsewhere model also its `upstream` URL and, optionally, `upstream-model` (its
name on that server). The first local model is the one loaded at start (`--model`); the others are
loaded on first use. Values are checked as the flags' are (by `Settings`). Where a setting comes
from, first wins: the command line, then MINGYAN_* environment variables, then the file, then the
default. A flag given for a list (`--model`, `--upstream`) replaces the file's whole list.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from mingyan.config import Settings
from mingyan.errors import MingyanError

MODEL_KEYS = frozenset({"name", "upstream", "upstream_model"})


class ConfigFileError(MingyanError):
    """The config file cannot be read, or names a key or value mingyan does not take."""


def read_config_file(path: Path, allowed: Collection[str]) -> dict[str, Any]:
    """The file's settings as Settings field names and values (not yet validated); `allowed`:
    the fields the command takes."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigFileError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field = _field(key)
        if field == "models":
            models = _models(path, value)
            for name in set(models) & set(values):
                raise ConfigFileError(f"{path}: {name!r} is given beside [[models]]: list every model there")
            values.update(models)
        elif field not in allowed:
            raise ConfigFileError(f"{path}: unknown key {key!r} (the keys are the flags of `mingyan serve --help`)")
        elif field in values:
            raise ConfigFileError(f"{path}: {key!r} is given twice")
        else:
            values[field] = value
    return values


def merge(file_values: Mapping[str, Any], env_values: Collection[str], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments for Settings: the file's values unless the environment or a flag sets
    the field (Settings reads the environment itself), then the flags. A model flag (or variable)
    replaces the file's models; an --upstream one its upstreams."""
    taken = set(env_values) | set(flags)
    if taken & {"model", "models"}:
        taken |= {"model", "models"}
    return {**{k: v for k, v in file_values.items() if k not in taken}, **flags}


def _field(key: str) -> str:
    return key.replace("-", "_")


def _models(path: Path, tables: object) -> dict[str, Any]:
    """`[[models]]` as the fields repeated --model and --upstream set."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigFileError(f"{path}: 'models' is an array of tables ([[models]] with a name each)")
    local: list[str] = []
    upstream: list[str] = []
    for n, table in enumerate(tables, 1):
        entry = {_field(k): v for k, v in table.items()}
        unknown = sorted(set(entry) - MODEL_KEYS)
        if unknown:
            keys = ", ".join(k.replace("_", "-") for k in sorted(MODEL_KEYS))
            raise ConfigFileError(f"{path}: unknown key {unknown[0]!r} in model {n} (a model takes {keys})")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigFileError(f"{path}: model {n} needs a name (a string)")
        for key in ("upstream", "upstream_model"):
            if key in entry and not isinstance(entry[key], str):
                raise ConfigFileError(f"{path}: {key.replace('_', '-')} of model {name!r} is a string")
        if "upstream" in entry:
            remote = entry.get("upstream_model")
            upstream.append(f"{name}={entry['upstream']}" + (f"#{remote}" if remote else ""))
        elif "upstream_model" in entry:
            raise ConfigFileError(f"{path}: model {name!r} has an upstream-model but no upstream URL")
        else:
            local.append(name)
    values: dict[str, Any] = {"upstream": upstream} if upstream else {}
    if local:
        values["model"], values["models"] = local[0], local[1:]
    return values


def settings_with_file(path: Path, allowed: Collection[str], flags: Mapping[str, Any]) -> Settings:
    """Settings from the flags given, the environment and the file at `path`; a value of the file
    that does not fit its setting is an error naming the file and the key."""
    from pydantic import ValidationError
    from pydantic_settings import EnvSettingsSource

    file_values = read_config_file(path, allowed)
    kwargs = merge(file_values, EnvSettingsSource(Settings)().keys(), flags)
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        if field in file_values and field not in flags:
            key = "[[models]]" if field in ("model", "models") else field.replace("_", "-")
            raise ConfigFileError(f"{path}: {key}: {first['msg']}") from None
        raise
