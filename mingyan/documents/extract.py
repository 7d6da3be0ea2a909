"""From an uploaded file's bytes to its pages of text: size check, type sniffing, the reader of
that type, and the page and character limits."""

from __future__ import annotations

from collections.abc import Callable

from mingyan.documents.docx_file import read_docx
from mingyan.documents.errors import FileTooLarge, MalformedDocument
from mingyan.documents.limits import Limits
from mingyan.documents.pages import Extracted, PageCollector
from mingyan.documents.pdf import read_pdf
from mingyan.documents.sniff import sniff
from mingyan.documents.text_formats import read_csv, read_html, read_text

Reader = Callable[[bytes, PageCollector], None]
READERS: dict[str, Reader] = {
    "pdf": read_pdf,
    "docx": read_docx,
    "html": read_html,
    "csv": read_csv,
    "md": read_text,
    "txt": read_text,
}


def extract(data: bytes, limits: Limits) -> Extracted:
    """The pages of `data`. Raises a DocumentError (FileTooLarge, UnsupportedType, MalformedDocument,
    TooManyPages, TooMuchText, ArchiveBomb) for a file that cannot be taken."""
    if len(data) > limits.max_bytes:
        raise FileTooLarge(f"The file has {len(data):,} bytes; at most {limits.max_bytes:,} are allowed.")
    kind = sniff(data)
    pages = PageCollector(limits)
    READERS[kind](data, pages)
    if not any(page.text.strip() for page in pages.pages):
        raise MalformedDocument(
            "No text could be extracted from the file (a scanned PDF needs OCR, which mingyan does not do)."
        )
    return Extracted(kind, pages.pages)
