"""A long conversation opens fast, and a new streaming reply never re-renders the old messages."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.browser.helpers import (
    conversation_file,
    import_conversation,
    send,
    wait_reply_done,
)

ANSWER = """Here is **item {i}**, with a list and some code:

- point one, with `inline code`
- point two, and math $x^{i} + y$

```python
def f{i}(x):
    return x * {i}
```

| n | square |
|---|---|
| {i} | {sq} |
"""

OBSERVE = """() => {
    const old = new Set([...document.querySelectorAll('#thread > article.msg')].map((n) => n.dataset.id));
    window.__mutations = {old: 0, added: 0, removed: 0, streamed: 0};
    window.__observer = new MutationObserver((records) => {
        for (const r of records) {
            const owner = (r.target.nodeType === 1 ? r.target : r.target.parentElement).closest('article.msg');
            if (owner && old.has(owner.dataset.id)) window.__mutations.old += 1;
            else if (owner) window.__mutations.streamed += 1;
            if (r.target.id === 'thread') {
                window.__mutations.added += r.addedNodes.length;
                window.__mutations.removed += r.removedNodes.length;
            }
        }
    });
    window.__observer.observe(document.querySelector('#thread'),
        {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def test_two_hundred_messages_open_fast_and_streaming_touches_only_the_new_reply(page, web) -> None:
    turns = [(f"Question number {i}: what is {i} squared?", ANSWER.format(i=i, sq=i * i)) for i in range(100)]
    cid = import_conversation(web.url, conversation_file("long chat", turns))
    started = time.monotonic()
    page.goto(f"{web.url}/c/{cid}")
    expect(page.locator("#thread > article.msg")).to_have_count(200)
    page.wait_for_selector("#thread > article.msg:last-child .katex")
    opened = time.monotonic() - started
    assert opened < 5.0, f"200 messages took {opened:.2f}s to open"
    print(f"opened 200 messages in {opened:.2f}s")
    # The page opened at the newest message.
    assert page.evaluate(
        "(() => { const s = document.querySelector('#scroller'); "
        "return s.scrollHeight - s.scrollTop - s.clientHeight < 120; })()"
    )

    page.evaluate(OBSERVE)
    web.engine.token_delay = 0.02
    send(page, "One more question, streamed slowly so that many frames render it")
    wait_reply_done(page)
    mutations = page.evaluate("window.__mutations")
    assert mutations["old"] == 0, mutations  # no old message was re-rendered
    assert mutations["removed"] == 0 and mutations["added"] == 2, mutations  # one node per new message
    assert mutations["streamed"] > 5, mutations  # the reply itself was rendered as it grew
    expect(page.locator("#thread > article.msg")).to_have_count(202)
    ids = page.eval_on_selector_all("#thread > article.msg", "nodes => nodes.map((n) => n.dataset.id)")
    assert len(set(ids)) == 202
