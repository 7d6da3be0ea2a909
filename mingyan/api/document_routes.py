"""/api/files: upload, list, read, download, delete and search a user's documents. Parse, call the
DocumentService, serialize. Another user's file is a 404 on every route."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from mingyan.api.auth import Owner, require_principal
from mingyan.api.context import context
from mingyan.api.errors import error_response
from mingyan.api.schemas.documents import CitationOut, FileList, FileOut, PassageList, PassageOut
from mingyan.api.schemas.history import MessageOut
from mingyan.documents.errors import DocumentError
from mingyan.documents.service import DocumentService
from mingyan.documents.sniff import MEDIA_TYPES
from mingyan.errors import InvalidRequestError
from mingyan.store.tables import Message

router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["files"])


def _service(request: Request) -> DocumentService:
    return context(request).document_service()


@router.post("/files", status_code=201, response_model=FileOut)
async def upload_file(request: Request, owner: Owner, file: Annotated[UploadFile, File()]) -> Response:
    """Multipart upload with one part, `file`. The type is sniffed from the content. An upload whose
    bytes the user already stored returns that file (200, `duplicate: true`)."""
    form = await request.form()
    extra = sorted(set(form.keys()) - {"file"})
    if extra or len(form.getlist("file")) != 1:
        raise InvalidRequestError(
            f"Unsupported form field {extra[0]!r}; send one part named 'file'."
            if extra
            else "Send exactly one 'file'.",
            param=extra[0] if extra else "file",
        )
    data = await file.read()
    try:
        added = await _service(request).add(owner, file.filename or "file", data)
    except DocumentError as exc:
        return error_response(exc.status, str(exc), param="file", code=exc.code)
    body = FileOut.model_validate(added.file).model_copy(update={"duplicate": added.duplicate})
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if added.duplicate else 201)


@router.get("/files")
async def list_files(request: Request, owner: Owner) -> FileList:
    service = _service(request)
    files = await service.files(owner)
    return FileList(
        data=[FileOut.model_validate(f) for f in files],
        used_bytes=sum(f.size for f in files),
        quota_bytes=service.quota_bytes,
    )


@router.get("/files/search")
async def search_files(
    request: Request,
    owner: Owner,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
    file_id: Annotated[list[str] | None, Query(max_length=100)] = None,
    mode: Literal["hybrid", "bm25", "vector"] = "hybrid",
) -> PassageList:
    """The user's best passages for `q` (within the files `file_id` names, when given)."""
    if "\x00" in q or not q.strip():
        raise InvalidRequestError("'q' must hold some text.", param="q")
    hits = await _service(request).search(owner, q, limit=limit, file_ids=file_id, mode=mode)
    return PassageList(
        data=[
            PassageOut(
                file_id=h.chunk.file_id,
                file_name=h.chunk.file_name,
                page=h.chunk.page,
                start=h.chunk.start,
                end=h.chunk.end,
                text=h.chunk.text,
                rank=h.rank,
            )
            for h in hits
        ]
    )


@router.get("/files/{file_id}")
async def get_file(file_id: str, request: Request, owner: Owner) -> FileOut:
    return FileOut.model_validate(await _service(request).get(owner, file_id))


@router.get("/files/{file_id}/content")
async def download_file(file_id: str, request: Request, owner: Owner) -> Response:
    """The bytes as uploaded, always as an attachment (an uploaded HTML page never runs here)."""
    stored, data = await _service(request).content(owner, file_id)
    return Response(
        data,
        media_type=MEDIA_TYPES.get(stored.kind, "application/octet-stream"),
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name)}",
            "Content-Security-Policy": "sandbox",
        },
    )


@router.delete("/files/{file_id}", status_code=204)
async def delete_file(file_id: str, request: Request, owner: Owner) -> Response:
    """Deletes the file, its passages and vectors, and the owner's saved KV states (a cached prompt
    may have held the file's text)."""
    await _service(request).delete(owner, file_id)
    await asyncio.to_thread(context(request).chat.engine.forget, owner)
    return Response(status_code=204)


async def with_citations(request: Request, owner: str, messages: list[Message]) -> list[MessageOut]:
    """`messages` for the API, each with the passages it cited."""
    conversations = context(request).conversation_service()
    found = {}
    if conversations.attachments is not None:
        found = await conversations.attachments.of_messages(owner, [m.id for m in messages if m.role == "assistant"])
    out = []
    for m in messages:
        item = MessageOut.model_validate(m)
        item.citations = [CitationOut.model_validate(c) for c in found.get(m.id, [])]
        out.append(item)
    return out
