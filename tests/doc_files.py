"""Documents made by the tests: Chinese PDFs (reportlab's STSong-Light CID font, which pypdf reads
back), English DOCX files with explicit page breaks, and hostile files (zip bombs, huge PDFs)."""

from __future__ import annotations

import io
import zipfile

import docx
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

CJK_FONT = "STSong-Light"


def make_pdf(pages: list[str], width: int = 38) -> bytes:
    """A PDF with one page per string; lines wrap every `width` characters."""
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, invariant=1)
    for text in pages:
        pdf.setFont(CJK_FONT, 11)
        y = 780
        for paragraph in text.split("\n"):
            for start in range(0, max(len(paragraph), 1), width):
                pdf.drawString(50, y, paragraph[start : start + width])
                y -= 16
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_blank_pdf(pages: int) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, invariant=1)
    for number in range(pages):
        pdf.drawString(50, 780, f"page {number + 1}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_docx(pages: list[list[str]]) -> bytes:
    """A .docx whose pages (lists of paragraphs) are separated by explicit page breaks."""
    document = docx.Document()
    for number, paragraphs in enumerate(pages):
        if number:
            document.add_page_break()
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def add_entry(docx_bytes: bytes, name: str, payload: bytes) -> bytes:
    """`docx_bytes` with one more zip entry, deflated."""
    buffer = io.BytesIO(docx_bytes)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, payload)
    return buffer.getvalue()


def zip_bomb_docx(megabytes: int = 64) -> bytes:
    """A real .docx carrying an entry of zeros that deflates about a thousand times."""
    return add_entry(make_docx([["A harmless first page."]]), "word/media/zeros.bin", bytes(megabytes << 20))


def many_entries_docx(entries: int) -> bytes:
    buffer = io.BytesIO(make_docx([["Many entries."]]))
    with zipfile.ZipFile(buffer, "a") as archive:
        for i in range(entries):
            archive.writestr(f"extra/item{i}.xml", b"<a/>")
    return buffer.getvalue()
