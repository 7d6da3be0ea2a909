"""PDF text with pypdf, page by page. The page count is checked before any page is read."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from mingyan.documents.errors import DocumentError, MalformedDocument, TooManyPages
from mingyan.documents.pages import PageCollector


def read_pdf(data: bytes, pages: PageCollector) -> None:
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed files are refused, not logged
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise MalformedDocument("The PDF is encrypted; upload it without a password.")
        count = len(reader.pages)
        if count == 0:
            raise MalformedDocument("The PDF has no pages.")
        if count > pages.limits.max_pages:
            raise TooManyPages(f"The PDF has {count:,} pages; at most {pages.limits.max_pages:,} are allowed.")
        for page in reader.pages:
            pages.add(_tidy(page.extract_text() or ""))
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise MalformedDocument(f"The PDF is damaged or malformed and cannot be read ({type(exc).__name__}).") from exc


def _tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip("\n")
