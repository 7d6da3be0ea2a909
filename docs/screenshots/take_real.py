"""Screenshot of the web chat with a real reply from the default model (README.md).

    .venv/bin/python docs/screenshots/take_real.py

Starts `mingyan serve` on the default model (Qwen2.5-Coder-0.5B-Instruct) with a throwaway data
directory, types a Chinese question into the page in Debian's Chromium (Playwright), waits for the
streamed reply to finish, and saves docs/screenshots/chat-real-zh.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.conftest import start_server, stop_server  # noqa: E402

QUESTION = "用三句话介绍一下长城，并说明它为什么有名。"
OUT = Path(__file__).resolve().parent / "chat-real-zh.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), None, "--n-ctx", "2048")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
                page.goto(server.url + "/")
                page.locator("#composer-input").fill(QUESTION)
                page.locator("#composer-input").press("Enter")
                page.locator("article.msg-assistant.streaming").wait_for(timeout=60_000)
                page.wait_for_function(
                    "() => { const m = document.querySelector('article.msg-assistant');"
                    " return m && !m.classList.contains('streaming'); }",
                    timeout=300_000,
                )
                page.wait_for_timeout(3000)  # the title the model writes after the reply
                page.screenshot(path=str(OUT))
                browser.close()
        finally:
            stop_server(server)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
