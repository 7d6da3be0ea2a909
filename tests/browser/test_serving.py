"""How the web chat is served: index.html at / and at client routes, static files with a strict
Content-Security-Policy, correct media types, nothing from elsewhere, vendored files as listed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from mingyan.api.web import CONTENT_SECURITY_POLICY
from mingyan.web import static_dir

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
STATIC = static_dir()


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/", "text/html"),
        ("/c/0123456789abcdef", "text/html"),
        ("/login", "text/html"),
        ("/setup", "text/html"),
        ("/account", "text/html"),
        ("/admin", "text/html"),
        ("/static/js/admin-view.js", "text/javascript"),
        ("/static/css/pages.css", "text/css"),
        ("/static/js/main.js", "text/javascript"),
        ("/static/vendor/dompurify/purify.es.mjs", "text/javascript"),
        ("/static/vendor/katex/katex.min.css", "text/css"),
        ("/static/vendor/katex/fonts/KaTeX_Main-Regular.woff2", "font/woff2"),
        ("/static/css/base.css", "text/css"),
    ],
)
def test_every_web_response_carries_the_security_headers(web, path: str, media_type: str) -> None:
    r = httpx.get(web.url + path)
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == media_type
    assert r.headers["content-security-policy"] == CSP == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_static_files_revalidate_and_stay_inside_the_folder(web) -> None:
    r = httpx.get(web.url + "/static/js/main.js")
    again = httpx.get(web.url + "/static/js/main.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    for path in ("/static/../api/web.py", "/static/%2e%2e/__init__.py", "/static/js/nothing.js"):
        assert httpx.get(web.url + path).status_code == 404


def test_the_page_has_no_inline_script_and_nothing_from_elsewhere() -> None:
    html = (STATIC / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag and 'type="module"' in tag
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html)  # no inline script body
    assert " on" not in " ".join(re.findall(r"<[^>]+>", html)).replace(" only-narrow", "")
    sources = [*STATIC.rglob("*.js"), *STATIC.rglob("*.mjs"), *STATIC.rglob("*.css"), STATIC / "index.html"]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(?:\bfrom|\bimport)\s*\(?\s*["'](?:https?:)?//""", text), path
        if "vendor" not in path.parts:
            assert "eval(" not in text and "new Function" not in text and "innerHTML" not in text, path
            assert not re.search(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", text), path
            for url in re.findall(r"""^import\s[^"']*["']([^"']+)["']""", text, re.M):
                assert url.startswith("./") or url.startswith("../vendor/"), f"{path} imports {url}"


def test_vendored_files_match_their_listed_sha256() -> None:
    vendor = STATIC / "vendor"
    listed = dict(
        (name, digest)
        for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", (vendor / "README.md").read_text(), re.M)
    )
    present = {str(p.relative_to(vendor)) for p in vendor.rglob("*") if p.is_file() and p.name != "README.md"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    for package in ("marked", "dompurify", "highlight", "katex"):
        assert (vendor / package / "LICENSE").is_file()


def test_the_static_files_are_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"mingyan.web" = ["static/**/*"]' in pyproject


def test_the_pages_answer_head_too(web) -> None:
    for path in ("/", "/c/abc", "/login"):
        response = httpx.head(web.url + path, timeout=10)
        assert response.status_code == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
