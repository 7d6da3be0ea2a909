"""What a file is, from its bytes (never its name): pdf, docx, html, csv, md or txt."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from mingyan.documents.errors import UnsupportedType

KINDS = ("pdf", "docx", "html", "csv", "md", "txt")
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
    "csv": "text/csv",
    "md": "text/markdown",
    "txt": "text/plain",
}
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)
_MARKDOWN_LINE = re.compile(r"^(#{1,6} \S|```|[-*+] \S|\d+\. \S|> \S)|\[[^\]]+\]\([^)]+\)|\*\*\S", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> str | None:
    """The text of `data` (UTF-8 with or without BOM, UTF-16 with BOM, or GB18030), or None when
    it is not text (undecodable, or holding control characters)."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gb18030"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return None if _CONTROL.search(text) else text
    return None


def sniff(data: bytes) -> str:
    """One of KINDS; UnsupportedType for anything else (images, other archives, binaries)."""
    if not data:
        raise UnsupportedType("The file is empty.")
    if data[:1024].lstrip().startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "docx" if _is_docx(data) else _refuse("a zip archive that is not a Word document (.docx)")
    if _HTML_START.match(data[:4096]):
        return "html"
    text = decode_text(data)
    if text is None:
        return _refuse("binary data")
    if _is_csv(text):
        return "csv"
    if len(_MARKDOWN_LINE.findall(text[:20000])) >= 2:
        return "md"
    return "txt"


def _refuse(what: str) -> str:
    raise UnsupportedType(
        f"The file holds {what}; mingyan reads PDF, Word (.docx), HTML, CSV, Markdown and plain text files."
    )


def _is_docx(data: bytes) -> bool:
    """A zip whose directory names word/document.xml (the directory is read, nothing expanded)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(info.filename == "word/document.xml" for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        return False


def _is_csv(text: str) -> bool:
    """At least two lines that a CSV dialect splits into the same number (2 or more) of fields."""
    lines = [line for line in text[:8192].splitlines() if line.strip()][:20]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t")
    except csv.Error:
        return False
    widths = {len(row) for row in csv.reader(lines, dialect)}
    return len(widths) == 1 and widths.pop() >= 2
