"""`mingyan models ...`: list, add, pull, rm, info. Thin: parse, call the registry, print."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from mingyan.config import Settings
from mingyan.models.registry import ModelEntry, ModelRegistry


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `models` subcommand (and its own subcommands) to a CLI's subparsers."""
    parser = subparsers.add_parser(
        "models",
        help="list, add, download and remove models",
        description="Manage GGUF models: the shipped ones, files you add and files you pull.",
    )
    parser.set_defaults(handler=run)
    sub = parser.add_subparsers(dest="models_command", metavar="COMMAND")
    sub.add_parser("list", help="show shipped and user models (the default is marked with *)")
    add = sub.add_parser("add", help="register a GGUF file already on this machine (it is not copied)")
    add.add_argument("path", type=Path, help="path to the .gguf file")
    add.add_argument("--name", help="model name (default: the file name without .gguf, lowercased)")
    pull = sub.add_parser(
        "pull",
        help="download a GGUF file and register it",
        description="SOURCE is an http(s) URL or a Hugging Face reference "
        "owner/repo/path/file.gguf[@revision]. Interrupted downloads resume.",
    )
    pull.add_argument("source", help="URL or owner/repo/file.gguf[@revision]")
    pull.add_argument("--name", help="model name (default: the file name without .gguf, lowercased)")
    pull.add_argument("--sha256", help="expected sha256 of the file; the download is refused otherwise")
    rm = sub.add_parser("rm", help="unregister a model (deletes the file only if it was pulled)")
    rm.add_argument("name", help="model name")
    info = sub.add_parser("info", help="show a model's file, checksum and GGUF metadata")
    info.add_argument("name", help="model name")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Handle `mingyan models ...`; errors propagate as ModelError."""
    registry = ModelRegistry(settings.data_dir, settings.cache_dir, settings.hf_endpoint, progress=sys.stderr.isatty())
    return _ACTIONS[args.models_command or "list"](args, registry, settings)


def _human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _list(args: argparse.Namespace, registry: ModelRegistry, settings: Settings) -> int:
    rows = [("", "NAME", "SOURCE", "SIZE", "AVAILABLE", "LICENSE")]
    defaults = (settings.model, settings.embedding_model.strip().lower())
    for entry in registry.list():
        rows.append(
            (
                "*" if entry.name in defaults else "",
                entry.name,
                entry.source,
                _human_size(entry.size),
                "yes" if entry.available else "no",
                entry.license or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(
        f"* default model ({settings.model}) and embedding model ({settings.embedding_model}); "
        "set MINGYAN_MODEL / MINGYAN_EMBEDDING_MODEL to change them"
    )
    return 0


def _describe(verb: str, entry: ModelEntry) -> None:
    print(f"{verb} {entry.name}: {entry.path} ({_human_size(entry.size)}, sha256 {entry.sha256})")


def _add(args: argparse.Namespace, registry: ModelRegistry, settings: Settings) -> int:
    _describe("added", registry.add(args.path, name=args.name))
    return 0


def _pull(args: argparse.Namespace, registry: ModelRegistry, settings: Settings) -> int:
    _describe("pulled", registry.pull(args.source, name=args.name, sha256=args.sha256))
    return 0


def _rm(args: argparse.Namespace, registry: ModelRegistry, settings: Settings) -> int:
    registry.remove(args.name)
    print(f"removed {args.name.strip().lower()}")
    return 0


def _info(args: argparse.Namespace, registry: ModelRegistry, settings: Settings) -> int:
    for key, value in registry.info(args.name).items():
        print(f"{key}: {'-' if value is None else value}")
    return 0


_ACTIONS: dict[str, Callable[[argparse.Namespace, ModelRegistry, Settings], int]] = {
    "list": _list,
    "add": _add,
    "pull": _pull,
    "rm": _rm,
    "info": _info,
}
