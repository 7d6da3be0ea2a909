"""Take the web chat's screenshots for README.md and docs/web.md (the chat, then the sign-in and
administration views once the server has accounts).

    .venv/bin/python docs/screenshots/take.py

Serves the web chat around the fake engine on a throwaway SQLite database, imports crafted
conversations through POST /api/import (the fake engine only echoes, so rich markdown comes from
the import), and drives Debian's Chromium (/usr/bin/chromium) through Playwright.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from mingyan.api.app import create_app  # noqa: E402
from mingyan.config import Settings  # noqa: E402
from mingyan.engine.fake import FakeEngine  # noqa: E402
from mingyan.store.accounts.account_store import AccountStore  # noqa: E402
from mingyan.store.conversations import Store  # noqa: E402
from mingyan.store.db import default_url, open_database  # noqa: E402
from mingyan.store.migrate import upgrade  # noqa: E402
from tests.app_server import serve_app  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.browser.helpers import conversation_file, import_conversation  # noqa: E402

OUT = Path(__file__).resolve().parent

ZH_QUESTION = "用表格比较 Python 和 Rust，给一段快速排序的代码，再写出一元二次方程的求根公式。"
ZH_ANSWER = r"""好的，下面分三部分回答。

### 1. Python 与 Rust 对比

| 方面 | Python | Rust |
|---|---|---|
| 类型系统 | 动态类型 | 静态类型，编译期检查 |
| 内存管理 | 垃圾回收 | 所有权与借用，无 GC |
| 典型用途 | 数据分析、脚本、AI | 系统编程、高性能服务 |

### 2. 快速排序

```python
def quicksort(items):
    if len(items) <= 1:
        return items
    pivot, *rest = items
    left = [x for x in rest if x < pivot]
    right = [x for x in rest if x >= pivot]
    return quicksort(left) + [pivot] + quicksort(right)
```

### 3. 求根公式

方程 $ax^2 + bx + c = 0$（$a \neq 0$）的两个根是：

$$x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}$$

当判别式 $\Delta = b^2 - 4ac < 0$ 时，方程没有实数根。"""

EN_QUESTION = "Write a Rust function that checks whether a number is prime, and explain its cost."
EN_ANSWER = r"""Here is a simple trial-division check:

```rust
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}
```

It tries every divisor up to $\sqrt{n}$, so it takes $O(\sqrt{n})$ steps:

- **fast** for numbers up to about $10^{12}$;
- for larger numbers, use a probabilistic test such as *Miller–Rabin*.

> Tip: skip even divisors after 2 to halve the work."""


def shoot(page, url: str, cid: str, name: str) -> None:
    page.goto(f"{url}/c/{cid}")
    page.wait_for_selector("html[data-ready=true]")
    page.wait_for_selector("article.msg-assistant .katex")
    page.evaluate("document.fonts.ready")
    page.wait_for_timeout(300)
    page.screenshot(path=str(OUT / name))
    print("wrote", OUT / name)


PASSWORD = "screenshot password"


def shoot_accounts(browser, url: str, store: Store) -> None:
    """The sign-in view in Chinese, and the administration page in English with a few users."""
    accounts = AccountStore.open(store.db)
    root = accounts.users.create_user("root", PASSWORD, role="admin")
    for name, role in (("李雷", "user"), ("hanmeimei", "admin"), ("alice", "user")):
        user = accounts.users.create_user(name, PASSWORD, role=role)
    accounts.users.set_disabled(user.id, True)
    accounts.ledger.set_quota(accounts.users.find_user("李雷").id, tokens_per_day=200_000)
    accounts.ledger.audit("login_failed", target="admin", ip="192.0.2.7")
    accounts.ledger.audit("user_created", actor=root, target="李雷", ip="127.0.0.1", role="user")

    context = browser.new_context(locale="zh-CN", color_scheme="light", viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{url}/login")
    page.wait_for_selector("#login-form")
    page.locator("#login-username").fill("李雷")
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(OUT / "login-zh.png"))
    print("wrote", OUT / "login-zh.png")
    context.close()

    context = browser.new_context(locale="en-US", color_scheme="light", viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{url}/admin")
    page.locator("#login-username").fill("root")
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-password").press("Enter")
    page.wait_for_selector(".users-table tbody tr[data-username=alice]")
    page.evaluate("document.fonts.ready")
    page.wait_for_timeout(200)
    page.screenshot(path=str(OUT / "admin-en.png"))
    print("wrote", OUT / "admin-en.png")
    context.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url_db = default_url(Path(tmp))
        upgrade(url_db)
        database = open_database(url_db)
        store = Store(database)
        app = create_app(Settings(auto_titles=False), FakeEngine(n_ctx=4096), store=store)
        with serve_app(app) as url, sync_playwright() as playwright:
            import_conversation(url, conversation_file("北京周末去哪儿", [("北京周末有什么好玩的地方？", "可以去颐和园、798 艺术区，或者爬一段慕田峪长城。")]))
            zh = import_conversation(url, conversation_file("Python 与 Rust 对比", [(ZH_QUESTION, ZH_ANSWER)]))
            en = import_conversation(url, conversation_file("Prime check in Rust", [(EN_QUESTION, EN_ANSWER)]))
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            shots = [
                ("chat-light-zh.png", "zh-CN", "light", {"width": 1280, "height": 900}, zh),
                ("chat-dark-en.png", "en-US", "dark", {"width": 1280, "height": 900}, en),
                ("chat-mobile-zh.png", "zh-CN", "light", {"width": 390, "height": 844}, zh),
            ]
            for name, locale, scheme, viewport, cid in shots:
                context = browser.new_context(locale=locale, color_scheme=scheme, viewport=viewport, device_scale_factor=1)
                shoot(context.new_page(), url, cid, name)
                context.close()
            shoot_accounts(browser, url, store)
            browser.close()
        database.dispose()


if __name__ == "__main__":
    main()
