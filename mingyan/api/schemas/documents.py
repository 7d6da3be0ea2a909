"""Bodies of /api/files: uploaded documents and the passages search finds in them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_serializer

from mingyan.documents.sniff import MEDIA_TYPES

__all__ = ["CitationOut", "FileList", "FileOut", "PassageList", "PassageOut"]


class FileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["file"] = "file"
    name: str
    kind: str  # sniffed from the content: pdf, docx, html, csv, md, txt
    size: int
    pages: int
    chars: int
    sha256: str
    embedding_model: str | None
    created_at: datetime
    duplicate: bool = False  # the upload's bytes matched a file already stored; that one is returned

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES.get(self.kind, "application/octet-stream")

    @field_serializer("created_at")
    def _utc(self, value: datetime) -> str:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileOut]
    used_bytes: int
    quota_bytes: int  # 0: no limit


class PassageOut(BaseModel):
    file_id: str
    file_name: str
    page: int
    start: int  # character offsets in the page's text
    end: int
    text: str
    rank: int


class PassageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[PassageOut]


class CitationOut(BaseModel):
    """A passage a reply cited with [marker]."""

    model_config = ConfigDict(from_attributes=True)

    marker: int
    file_id: str
    file_name: str
    page: int
    start: int  # character offsets in the page's text
    end: int
    text: str
