"""Extracted text: a document's pages, numbered from 1, and the running bounds on it."""

from __future__ import annotations

from dataclasses import dataclass

from mingyan.documents.errors import TooManyPages, TooMuchText
from mingyan.documents.limits import Limits


@dataclass(frozen=True)
class Page:
    number: int  # from 1
    text: str


@dataclass(frozen=True)
class Extracted:
    kind: str
    pages: list[Page]

    @property
    def chars(self) -> int:
        return sum(len(page.text) for page in self.pages)

    @property
    def text(self) -> str:
        return "\n\n".join(page.text for page in self.pages)


class PageCollector:
    """Pages as an extractor finds them, refused as soon as they pass the page or character limit."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.pages: list[Page] = []
        self.chars = 0

    def add(self, text: str) -> None:
        if len(self.pages) >= self.limits.max_pages:
            raise TooManyPages(f"The document has more than {self.limits.max_pages} pages.")
        self.chars += len(text)
        if self.chars > self.limits.max_chars:
            raise TooMuchText(f"The document holds more than {self.limits.max_chars:,} characters of text.")
        self.pages.append(Page(len(self.pages) + 1, text))
