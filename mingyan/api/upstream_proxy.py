"""/v1 requests for a model served by an upstream engine: admitted by the caller's quotas here,
then forwarded as they came (mingyan.serving.upstream), the answer passed back as the upstream
wrote it — streamed chunks, tool calls, usage and errors — with the model named as served here.
The usage the upstream reports is recorded against the caller."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mingyan.accounts.principal import Principal
from mingyan.api.context import context
from mingyan.api.errors import error_body
from mingyan.api.streaming import buffer_bytes, sse, sse_response
from mingyan.api.upstream_guard import ChunkGuard
from mingyan.serving.upstream import UpstreamEngine, usage_from


async def forward(
    request: Request, principal: Principal, route: str, path: str, body: BaseModel, engine: UpstreamEngine
) -> Response:
    ctx = context(request)
    admission = await asyncio.to_thread(ctx.meter.admit, principal)
    payload = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    streaming = bool(payload.get("stream"))
    wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
    if streaming:  # the usage is asked for always, to meter it; passed on only when the client asked
        payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
    client = engine.client()
    try:
        response = await engine.send(client, path, payload)
    except BaseException:
        await client.aclose()
        admission.release()
        raise
    name = engine.upstream.name
    guard = ChunkGuard(ctx.chat.safety, principal.user_id)  # the content policy, as on local replies

    def record(usage: dict[str, Any] | None) -> None:
        admission.release()
        if (metered := usage_from(usage)) is not None:
            ctx.meter.record(principal, route, name, metered)

    if response.status_code >= 400 or not streaming:
        try:
            raw = await response.aread()
        finally:
            await response.aclose()
            await client.aclose()
        data = _json(raw)
        if data is None:
            record(None)
            return JSONResponse(error_body(502, f"the upstream of model {name} answered {response.status_code}"), 502)
        if response.status_code < 400 and isinstance(data, dict):
            data["model"] = name
            data = guard.check_whole(data)
        await asyncio.to_thread(record, data.get("usage") if response.status_code < 400 else None)
        return JSONResponse(data, response.status_code)
    events = _relay(response, client, name, wants_usage, record, guard)
    return sse_response(events, buffer_bytes=buffer_bytes(request))


async def _relay(
    response: httpx.Response, client: httpx.AsyncClient, name: str, wants_usage: bool, record: Any, guard: ChunkGuard
) -> AsyncIterator[str]:
    usage = None
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                for held in guard.flush():
                    yield sse(held)
                yield "data: [DONE]\n\n"
                break
            chunk = _json(data.encode())
            if not isinstance(chunk, dict):
                continue
            usage = chunk.get("usage") or usage
            if "model" in chunk:
                chunk["model"] = name
            if not wants_usage:
                chunk.pop("usage", None)
                if not chunk.get("choices") and "error" not in chunk:
                    continue  # the usage-only chunk the client did not ask for
            for ready in guard.feed(chunk):
                yield sse(ready)
            if guard.verdict is not None:  # stopped by the content policy: nothing of the phrase was sent
                yield "data: [DONE]\n\n"
                break
        else:  # the upstream ended without [DONE]: what was held was checked whole
            for held in guard.flush():
                yield sse(held)
    except httpx.HTTPError as exc:
        message = f"The upstream of model {name} broke off its reply ({type(exc).__name__})."
        yield sse(error_body(503, message, code="model_unavailable")) + "data: [DONE]\n\n"
    finally:
        await response.aclose()
        await client.aclose()
        await asyncio.to_thread(record, usage)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
