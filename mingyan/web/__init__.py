"""The web chat: static files (HTML, ES modules, CSS, vendored libraries) served by mingyan.api.web.

No build step: static/js/*.js are the browser's own modules; static/vendor/ is copied from npm by
web-vendor/update.sh and committed.
"""

from __future__ import annotations

from pathlib import Path


def static_dir() -> Path:
    return Path(__file__).parent / "static"
