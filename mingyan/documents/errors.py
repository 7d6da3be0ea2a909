"""Why a file was refused. Each error carries the HTTP status and code the API answers with."""

from __future__ import annotations

from mingyan.errors import InvalidRequestError


class DocumentError(InvalidRequestError):
    """A file that cannot be taken; `status` is the HTTP status to answer with."""

    status = 400
    default_code = "invalid_file"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="file", code=self.default_code)


class UnsupportedType(DocumentError):
    status = 415
    default_code = "unsupported_file_type"


class FileTooLarge(DocumentError):
    status = 413
    default_code = "file_too_large"


class TooManyPages(DocumentError):
    status = 413
    default_code = "too_many_pages"


class TooMuchText(DocumentError):
    status = 413
    default_code = "too_much_text"


class ArchiveBomb(DocumentError):
    """A .docx (a zip) whose entries would expand past the limits."""

    status = 413
    default_code = "archive_too_large"


class MalformedDocument(DocumentError):
    status = 422
    default_code = "malformed_file"


class StorageQuotaExceeded(DocumentError):
    status = 413
    default_code = "storage_quota_exceeded"
