"""The web chat at `/`: static files under /static, index.html at the client-side routes.

Every response here carries a strict Content-Security-Policy: scripts only from this server (no
inline script, no eval), no plugins, no framing, no fetches elsewhere. Inline styles are allowed
because KaTeX positions math with them. Nothing is loaded from a CDN: the web chat works offline.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from mingyan.web import static_dir

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Files change with each release and are small: revalidate (ETag) instead of guessing an age.
    "Cache-Control": "no-cache",
}
# Not left to the system's MIME database: module scripts must be JavaScript (nosniff is strict).
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".md": "text/plain; charset=utf-8",
}
# Paths the browser-side router (static/js/router.js) handles: each serves index.html.
CLIENT_ROUTES = ("/", "/c/{conversation_id}", "/login", "/setup", "/account", "/admin")


class WebStaticFiles(StaticFiles):
    """StaticFiles with the web chat's security headers and fixed media types."""

    def file_response(self, full_path, stat_result: os.stat_result, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        return _secured(response, os.path.splitext(str(full_path))[1].lower())


def _secured(response: Response, suffix: str = ".html") -> Response:
    if suffix in MEDIA_TYPES:
        response.headers["Content-Type"] = MEDIA_TYPES[suffix]
    response.headers.update(SECURITY_HEADERS)
    return response


def _index() -> Response:
    return _secured(FileResponse(static_dir() / "index.html"))


def _api_docs() -> Response:
    return _secured(FileResponse(static_dir() / "api-docs.html"))


def install_static(app: FastAPI) -> None:
    if not any(getattr(route, "path", None) == "/static" for route in app.routes):
        app.mount("/static", WebStaticFiles(directory=static_dir()), name="static")


def install_api_docs(app: FastAPI) -> None:
    """The API reference at /docs: Swagger UI from the vendored files, under the same policy."""
    install_static(app)
    _add_page(app, "/docs", _api_docs)


def install(app: FastAPI) -> None:
    """Serve the web chat from `app` (it talks to /api and /v1 of the same app)."""
    install_static(app)
    for path in CLIENT_ROUTES:
        _add_page(app, path, _index)


def _add_page(app: FastAPI, path: str, page) -> None:
    """A page (not part of the API schema)."""
    app.add_api_route(path, page, methods=["GET", "HEAD"], include_in_schema=False)
