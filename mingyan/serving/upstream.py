"""Upstream engines: a model served by another OpenAI-compatible server (vLLM, llama.cpp's
llama-server, another mingyan), reached over HTTP with httpx.

Two ways in, both through the one `UpstreamEngine`:
- `send()`: a whole OpenAI request forwarded as it came (the /v1 routes of an upstream model), so
  streaming, usage, tool calls and the upstream's own errors reach the client as the upstream
  wrote them (the model renamed to the one served here).
- The Engine protocol (stored conversations): messages travel as the "prompt" — the chat template
  renders them as JSON and the "tokens" are its characters — and `generate()` turns them back into
  a chat request whose streamed text becomes TokenEvents, with the upstream's usage at the end.
  Grammar constraints, logit_bias and logprobs are not forwarded here: a request asking for them
  is refused (400 naming the field).

An upstream that cannot be reached (refused, timed out, 5xx from a proxy in front) is
UpstreamUnavailable: a 503 for that model; the other models go on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from mingyan.engine.base import (
    EngineStats,
    EventStream,
    FinishReason,
    GenerationRequest,
    ModelInfo,
    TokenEvent,
    Usage,
)
from mingyan.errors import EngineError, InvalidRequestError, ModelError, UpstreamUnavailable
from mingyan.formats.template import ChatTemplate
from mingyan.sampling import SamplingSettings

# The prompt is the messages as JSON, one "token" per character: room for any conversation the
# upstream may take (it refuses what does not fit its own context, and that error passes through).
N_CTX_CHARS = 1 << 22
N_VOCAB = 0x110000  # Unicode code points
MESSAGES_AS_JSON = "{{ messages | tojson }}"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0  # between two pieces of a reply (a long prefill on a busy upstream)
DEFAULTS = SamplingSettings()


@dataclass(frozen=True)
class Upstream:
    name: str  # the model's name here
    url: str  # the upstream's OpenAI base URL, e.g. http://gpu-box:8000/v1
    model: str  # the model's name there
    api_key: str | None = None

    @property
    def shown_url(self) -> str:
        """The URL without credentials, for status pages and logs."""
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")) + (
            f" (port {parts.port})" if parts.port else ""
        )


def parse_upstream(spec: str, api_key: str | None = None) -> Upstream:
    """`NAME=URL`, optionally `NAME=URL#REMOTE_MODEL` (default: the upstream's model is NAME)."""
    name, sep, url = spec.partition("=")
    name, url = name.strip(), url.strip()
    url, _, remote = url.partition("#")
    parts = urlsplit(url)
    if not sep or not name or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelError(f"an upstream is NAME=URL (such as big=http://gpu-box:8000/v1), not {spec!r}")
    return Upstream(name=name, url=url.rstrip("/"), model=remote.strip() or name, api_key=api_key)


class UpstreamEngine:
    """An Engine whose model runs on another OpenAI-compatible server (see the module doc)."""

    def __init__(self, upstream: Upstream, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.upstream = upstream
        self._transport = transport
        self._info = ModelInfo(
            name=upstream.name,
            path=upstream.shown_url,
            sha256="",
            n_ctx=N_CTX_CHARS,
            n_ctx_train=N_CTX_CHARS,
            architecture="upstream",
            n_vocab=N_VOCAB,
        )
        self._template = ChatTemplate(MESSAGES_AS_JSON)
        self._counts = {"active": 0, "requests": 0, "cancelled": 0, "prompt": 0, "cached": 0, "generated": 0}
        self._errors = 0
        self._last_error: str | None = None

    # ---- forwarding a whole request -----------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.upstream.api_key}"} if self.upstream.api_key else {}
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        return httpx.AsyncClient(
            base_url=self.upstream.url, headers=headers, timeout=timeout, transport=self._transport
        )

    async def send(self, client: httpx.AsyncClient, path: str, payload: dict[str, Any]) -> httpx.Response:
        """POST `payload` (its `model` set to the upstream's) and return the open response, its
        body not yet read. Raises UpstreamUnavailable when the upstream cannot be reached or a
        proxy in front of it answers 502/503/504."""
        payload = {**payload, "model": self.upstream.model}
        try:
            response = await client.send(client.build_request("POST", path, json=payload), stream=True)
        except httpx.HTTPError as exc:
            raise self._unavailable(f"cannot reach it ({type(exc).__name__}: {exc})") from exc
        if response.status_code in (502, 503, 504):
            await response.aclose()
            raise self._unavailable(f"it answered {response.status_code}")
        return response

    def _unavailable(self, why: str) -> UpstreamUnavailable:
        self._errors += 1
        self._last_error = f"upstream of model {self.upstream.name} at {self.upstream.shown_url}: {why}"
        return UpstreamUnavailable(f"The model '{self.upstream.name}' is unavailable: its server {why}.")

    # ---- the Engine protocol ------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def chat_template(self) -> ChatTemplate:
        return self._template

    def tokenize(self, text: str, *, special: bool = True, bos: bool = True) -> list[int]:
        return [ord(c) for c in text]

    def has_special_text(self, text: str) -> bool:
        return False  # no control tokens: the text travels as JSON

    def generate(self, request: GenerationRequest) -> EventStream:
        payload = self._chat_payload(request)  # refuses what cannot be forwarded, before any token
        self._counts["requests"] += 1
        return self._stream(payload)

    def _chat_payload(self, request: GenerationRequest) -> dict[str, Any]:
        s = request.sampling
        for name, asked in (
            ("response_format", s.constraint is not None),
            ("logit_bias", bool(request.logit_bias)),
            ("logprobs", request.logprobs is not None),
        ):
            if asked:
                raise InvalidRequestError(
                    f"{name} is not forwarded to the upstream model {self.upstream.name}", param=name
                )
        try:
            messages = json.loads("".join(map(chr, request.prompt_tokens)))
        except (ValueError, OverflowError) as exc:
            raise InvalidRequestError(
                "an upstream model takes chat messages, not a raw prompt", param="prompt"
            ) from exc
        payload: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        optional = {
            "max_tokens": s.max_tokens,
            "seed": s.seed,
            "stop": list(s.stop) or None,
            "presence_penalty": s.presence_penalty or None,
            "frequency_penalty": s.frequency_penalty or None,
            "top_k": s.top_k if s.top_k != DEFAULTS.top_k else None,
            "min_p": s.min_p if s.min_p != DEFAULTS.min_p else None,
        }
        payload.update({k: v for k, v in optional.items() if v is not None})
        if request.user:
            payload["user"] = request.user
        return payload

    async def _stream(self, payload: dict[str, Any]) -> AsyncGenerator[TokenEvent, None]:
        self._counts["active"] += 1
        finished = False
        try:
            async with self.client() as client:
                response = await self.send(client, "/chat/completions", payload)
                try:
                    if response.status_code >= 400:
                        raise EngineError(await _error_text(response, self.upstream.name))
                    async for event in _events(response):
                        finished = event.finish_reason is not None
                        yield event
                        if finished:
                            self._count(event)
                            return
                finally:
                    await response.aclose()
            raise EngineError(f"the upstream of model {self.upstream.name} ended its reply without finishing it")
        finally:
            self._counts["active"] -= 1
            if not finished:
                self._counts["cancelled"] += 1

    def _count(self, event: TokenEvent) -> None:
        if event.usage is not None:
            self._counts["prompt"] += event.usage.prompt_tokens
            self._counts["cached"] += event.usage.cached_tokens
            self._counts["generated"] += event.usage.completion_tokens

    def stats(self) -> EngineStats:
        c = self._counts
        return EngineStats(
            active=c["active"],
            queued=0,
            requests_total=c["requests"],
            cancelled_total=c["cancelled"],
            prompt_tokens_total=c["prompt"],
            cached_tokens_total=c["cached"],
            generated_tokens_total=c["generated"],
            errors_total=self._errors,
            last_error=self._last_error,
        )

    def forget(self, scope: str, label: str | None = None) -> None:
        """Nothing is kept here (the upstream manages its own cache)."""

    def close(self) -> None:
        """Nothing to free: each request has its own connection."""


async def _events(response: httpx.Response) -> AsyncIterator[TokenEvent]:
    """TokenEvents from an OpenAI chat stream: text as it comes; the finish (held back until the
    usage chunk that follows it, or the stream's end) with the usage."""
    reason: FinishReason | None = None
    usage: Usage | None = None
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if "error" in chunk:
            raise EngineError(str(chunk["error"].get("message") or chunk["error"]))
        usage = usage_from(chunk.get("usage")) or usage
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content") or ""
            if text:
                yield TokenEvent(text)
            if choice.get("finish_reason"):
                reason = FinishReason.LENGTH if choice["finish_reason"] == "length" else FinishReason.STOP
    if reason is not None:
        yield TokenEvent("", finish_reason=reason, usage=usage or Usage(0, 0))


def usage_from(data: dict[str, Any] | None) -> Usage | None:
    if not data:
        return None
    cached = (data.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0), int(cached))


async def _error_text(response: httpx.Response, name: str) -> str:
    body = (await response.aread()).decode("utf-8", "replace")
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:300] or f"status {response.status_code}"
    return f"the upstream of model {name} refused the request: {message}"
