"""The bounds every uploaded file is held to, checked before (and while) it is read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024  # the file as uploaded
    max_pages: int = 1000
    max_chars: int = 2_000_000  # extracted text, all pages together
    max_zip_entries: int = 2000  # a .docx is a zip: entries in it
    max_zip_bytes: int = 100 * 1024 * 1024  # their uncompressed sizes together
    max_zip_ratio: int = 100  # uncompressed / compressed, per entry (entries over 1 MiB)
