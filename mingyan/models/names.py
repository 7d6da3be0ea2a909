"""Model names. A name becomes a file name under data_dir, so only a safe alphabet is allowed."""

from __future__ import annotations

import re

from mingyan.errors import ModelError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RULE = "1-64 characters from a-z 0-9 . _ -, starting with a letter or digit"


def check_name(name: str) -> str:
    """The lowercased name, or ModelError if it could escape its directory or is otherwise unsafe."""
    lowered = name.strip().lower()
    if not NAME_PATTERN.match(lowered):
        raise ModelError(f"invalid model name {name!r}: use {RULE}")
    return lowered


def name_from_filename(filename: str) -> str:
    """Default name for a file: its stem (without .gguf), lowercased."""
    stem = filename[: -len(".gguf")] if filename.lower().endswith(".gguf") else filename
    lowered = stem.lower()
    if not NAME_PATTERN.match(lowered):
        raise ModelError(f"cannot derive a model name from file name {filename!r}; pass --name ({RULE})")
    return lowered
