"""Word (.docx) text with python-docx. A .docx is a zip: its directory is checked against the
limits (entries, total uncompressed size, compression ratio) before python-docx opens it.

The sizes checked are the ones the zip's directory declares; Python's zipfile never returns more
bytes for an entry than its declared size, so a lying directory cannot expand past them either.
A .docx has no fixed pages: pages are counted at explicit page breaks.
"""

from __future__ import annotations

import io
import zipfile

import docx
from docx.oxml.ns import qn

from mingyan.documents.errors import ArchiveBomb, DocumentError, MalformedDocument
from mingyan.documents.limits import Limits
from mingyan.documents.pages import PageCollector

_BIG_ENTRY = 1024 * 1024  # the ratio check applies to entries larger than this
_T, _TAB, _BR, _CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
_TYPE, _P, _TBL = qn("w:type"), qn("w:p"), qn("w:tbl")


def check_archive(data: bytes, limits: Limits) -> None:
    """ArchiveBomb when the zip would expand past the limits; MalformedDocument when it is no zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise MalformedDocument("The .docx file is not a valid zip archive.") from exc
    if len(entries) > limits.max_zip_entries:
        raise ArchiveBomb(f"The .docx holds {len(entries):,} entries; at most {limits.max_zip_entries:,} are allowed.")
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_zip_bytes:
        raise ArchiveBomb(f"The .docx would expand to {total:,} bytes; at most {limits.max_zip_bytes:,} are allowed.")
    for entry in entries:
        if entry.file_size > _BIG_ENTRY and entry.file_size > limits.max_zip_ratio * max(entry.compress_size, 1):
            raise ArchiveBomb(
                f"The .docx entry {entry.filename!r} expands {entry.file_size // max(entry.compress_size, 1):,} "
                f"times; at most {limits.max_zip_ratio} is allowed."
            )


def read_docx(data: bytes, pages: PageCollector) -> None:
    check_archive(data, pages.limits)
    try:
        document = docx.Document(io.BytesIO(data))
        body = document.element.body
    except DocumentError:
        raise
    except Exception as exc:  # python-docx raises KeyError, lxml errors, ValueError... on broken parts
        raise MalformedDocument(f"The .docx file is damaged and cannot be read ({type(exc).__name__}).") from exc
    text: list[str] = []
    for block in body.iterchildren():
        if block.tag == _P:
            _paragraph(block, text, pages)
        elif block.tag == _TBL:
            _table(block, text)
    pages.add("".join(text).strip("\n"))


def _paragraph(element: object, text: list[str], pages: PageCollector) -> None:
    for node in element.iter():  # type: ignore[attr-defined]
        if node.tag == _T:
            text.append(node.text or "")
        elif node.tag == _TAB:
            text.append("\t")
        elif node.tag == _CR or (node.tag == _BR and node.get(_TYPE) not in ("page", "column")):
            text.append("\n")
        elif node.tag == _BR and node.get(_TYPE) == "page":
            pages.add("".join(text).strip("\n"))
            text.clear()
    text.append("\n")


def _table(element: object, text: list[str]) -> None:
    """Each row on a line, its cells' text joined by ' | '."""
    for row in element.iter(qn("w:tr")):  # type: ignore[attr-defined]
        cells = ["".join(t.text or "" for t in cell.iter(_T)) for cell in row.iter(qn("w:tc"))]
        text.append(" | ".join(cells) + "\n")
