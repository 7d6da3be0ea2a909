"""Plain text, Markdown, CSV and HTML: one page each, or one page per form feed (\\f)."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

from mingyan.documents.errors import MalformedDocument
from mingyan.documents.pages import PageCollector
from mingyan.documents.sniff import decode_text

_SKIPPED = frozenset({"script", "style", "head", "template", "noscript", "svg"})
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"}
)


def read_text(data: bytes, pages: PageCollector) -> None:
    for page in _text(data).split("\f"):
        pages.add(page.strip("\n"))


def read_csv(data: bytes, pages: PageCollector) -> None:
    """Each row as one line, its fields joined by ' | ' (the header row first, as written)."""
    text = _text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
        rows = csv.reader(io.StringIO(text), dialect)
        pages.add("\n".join(" | ".join(field.strip() for field in row) for row in rows if row))
    except csv.Error as exc:
        raise MalformedDocument(f"The CSV file cannot be read: {exc}.") from exc


def read_html(data: bytes, pages: PageCollector) -> None:
    parser = _TextOfHtml()
    parser.feed(_text(data))
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    pages.add("\n".join(line for line in lines if line))


def _text(data: bytes) -> str:
    text = decode_text(data)
    if text is None:
        raise MalformedDocument("The file is not text in UTF-8, UTF-16 or GB18030.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _TextOfHtml(HTMLParser):
    """The visible text of an HTML page; scripts and styles left out, blocks on lines of their own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)
