"""POST /v1/embeddings: parse, call the embeddings service, serialize."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from mingyan.api.auth import CurrentPrincipal, client_identity, require_principal
from mingyan.api.embeddings import check_dimensions, encode, metered_embed, served_embedder
from mingyan.api.schemas.embeddings import EmbeddingList, EmbeddingRequest, EmbeddingUsage

router = APIRouter(prefix="/v1", dependencies=[Depends(require_principal)])


@router.post("/embeddings", response_model=EmbeddingList)
async def create_embeddings(body: EmbeddingRequest, request: Request, principal: CurrentPrincipal) -> Response:
    embedder = served_embedder(request, body.model)
    dimensions = check_dimensions(embedder, body.dimensions)
    user = client_identity(request, principal, body.user)
    result = await metered_embed(request, principal, embedder, body.inputs(), user)
    reply = EmbeddingList(
        data=encode(result.vectors, dimensions, body.encoding_format),
        model=embedder.info.name,
        usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
    # Serialized by pydantic in one pass: a batch holds hundreds of thousands of floats.
    return Response(reply.model_dump_json(), media_type="application/json")
