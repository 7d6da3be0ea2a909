"""Command-line flags generated from the Settings declaration (one flag per field)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr

from mingyan.cli.config_file import settings_with_file
from mingyan.config import Settings

SECRET_FIELDS = ("api_key", "database_url", "upstream_api_key")
# A flag given more than once: the first value sets the field, the others go to the list field named.
REPEATABLE = {"model": "models"}
LIST_FIELDS = ("models", "upstream", "ray_replica_resources", "ray_model_replicas")
NEGATED = {"draft_model": "none"}  # --no-NAME sets the field to this value


def add_config_flag(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """--config FILE: the settings `names` from a TOML file (mingyan.cli.config_file); flags override it."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read settings from this TOML file: keys are these flags' names ([[models]] for the models); "
        "flags and MINGYAN_* variables override it",
    )
    parser.set_defaults(config_fields=tuple(names))


def add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """One flag per Settings field; help text and defaults come from the declaration."""
    for name in names:
        field = Settings.model_fields[name]
        kind = field.annotation
        help_text = f"{field.description} (env MINGYAN_{name.upper()})"
        if kind is bool:
            parser.add_argument(
                "--" + name.replace("_", "-"),
                dest=f"setting_{name}",
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
            continue
        convert = int if kind is int else float if kind is float else Path if kind is Path else str
        if name in REPEATABLE or name in LIST_FIELDS:
            help_text += "; may be repeated"
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"setting_{name}",
            type=convert,
            default=None,
            action="append" if name in REPEATABLE or name in LIST_FIELDS else "store",
            metavar=name.upper(),
            help=help_text,
        )
        if name in NEGATED:
            parser.add_argument(
                "--no-" + name.replace("_", "-"),
                dest=f"setting_{name}",
                action="store_const",
                const=NEGATED[name],
                help=f"same as --{name.replace('_', '-')} {NEGATED[name]}",
            )


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    for name, rest in REPEATABLE.items():
        if isinstance(overrides.get(name), list):
            first, *more = overrides[name]
            overrides[name] = first
            if more:
                overrides[rest] = more + list(overrides.get(rest) or [])
    for secret in SECRET_FIELDS:
        if secret in overrides:
            overrides[secret] = SecretStr(overrides[secret])
    config = getattr(args, "config", None)
    if config is not None:  # `serve --config FILE` (mingyan.cli.config_file)
        return settings_with_file(config, args.config_fields, overrides)
    return Settings(**overrides)
