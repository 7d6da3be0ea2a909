"""Every error leaves the API as OpenAI's error JSON: {"error": {message, type, param, code}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from mingyan.accounts.quotas import QuotaExceeded
from mingyan.accounts.throttle import TooManyAttempts
from mingyan.api.auth import refusal_before_validation
from mingyan.api.schemas import ErrorDetail, ErrorResponse
from mingyan.errors import (
    AccessRevoked,
    ConflictError,
    EngineBusyError,
    EngineClosing,
    EngineLost,
    InvalidRequestError,
    MingyanError,
    TemplateError,
    UpstreamUnavailable,
)
from mingyan.store.errors import ImportFormatError, NotFound, is_disk_full

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    detail = ErrorDetail(message=message, type=kind, param=param, code=code)
    return ErrorResponse(error=detail).model_dump()


def error_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param, code=code), status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]  # where it came from; the param is named by the rest
    param = ".".join(loc) or None
    reason = first.get("msg", "invalid request")
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    if param is None:
        return f"Invalid request body: {reason}.", None
    return f"Invalid value for '{param}': {reason}.", param


# Errors answered with a fixed status and code (None: the exception's own `code`); those that carry
# `retry_after_s` get a Retry-After header.
MAPPED: dict[type[Exception], tuple[int, str | None]] = {
    EngineBusyError: (429, "server_busy"),
    EngineClosing: (503, "server_shutting_down"),
    EngineLost: (503, "replica_lost"),
    UpstreamUnavailable: (503, "model_unavailable"),
    TooManyAttempts: (429, "too_many_attempts"),
    QuotaExceeded: (429, "quota_exceeded"),
    AccessRevoked: (403, "access_revoked"),
    NotFound: (404, "not_found"),
    ImportFormatError: (400, "invalid_import_file"),
    ConflictError: (409, None),
}


async def _mapped(_: Request, exc: Exception) -> JSONResponse:
    status, code = next(MAPPED[cls] for cls in type(exc).__mro__ if cls in MAPPED)
    retry_after = getattr(exc, "retry_after_s", None)
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
    return error_response(status, str(exc), code=code or getattr(exc, "code", None), headers=headers)


async def _database_away(_: Request, exc: Exception) -> JSONResponse:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if is_disk_full(exc):  # the operator must free space; reads and /v1 go on meanwhile
        log.error("the database's disk is full; writes fail until space is freed: %s", reason)
        message = "The database's disk is full, so nothing can be saved right now; retry once space is freed."
    else:
        log.warning("database unavailable: %s", reason)
        message = "The database is unavailable right now; retry shortly."
    return error_response(
        503,
        message,
        code="database_unavailable",
        headers={"Retry-After": "2"},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = await refusal_before_validation(request)
        if refused is not None:
            return error_response(refused.status_code, str(refused.detail), headers=dict(refused.headers or {}))
        message, param = _validation_message(exc)
        return error_response(400, message, param=param, code="invalid_value" if param else None)

    @app.exception_handler(InvalidRequestError)
    async def _bad_request(_: Request, exc: InvalidRequestError) -> JSONResponse:
        body = error_body(400, str(exc), param=exc.param, code=exc.code)
        if isinstance(category := getattr(exc, "category", None), str):  # content_filter: which category
            body["error"]["category"] = category
        return JSONResponse(body, 400)

    @app.exception_handler(TemplateError)
    async def _template(_: Request, exc: TemplateError) -> JSONResponse:
        return error_response(400, str(exc), param="messages", code="chat_template_error")

    for exception in MAPPED:
        app.add_exception_handler(exception, _mapped)

    for away in (OperationalError, InterfaceError):  # a database restart, a network cut
        app.add_exception_handler(away, _database_away)

    @app.exception_handler(MingyanError)
    async def _engine(_: Request, exc: MingyanError) -> JSONResponse:
        log.error("request failed: %s", exc)
        return error_response(500, str(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        # (Starlette answers this handler outside the middleware stack: the nosniff header is set here.)
        return error_response(
            500,
            "The server had an internal error while processing the request.",
            headers={"X-Content-Type-Options": "nosniff"},
        )
