"""Hostile text, typed by the user and returned by the model, renders inert: no script runs, no
dialog opens, nothing is fetched from another host, no javascript:/data:/vbscript: link survives."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.helpers import (
    conversation_file,
    import_conversation,
    send,
    wait_reply_done,
)

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "<svg onload=alert(1)><circle r=10 /></svg>",
    "![a](http://127.0.0.1:1/x.png)",
    '<iframe src="javascript:alert(1)"></iframe>',
    "&lt;script&gt;alert(1)&lt;/script&gt; and &#60;img src=x onerror=alert(1)&#62;",
    "[click me](JaVaScRiPt:alert(1))",
    r"$\href{javascript:alert(1)}{click}$ and $$\url{javascript:alert(1)}$$",
    '<a href="javascript:alert(1)">plain html link</a>',
    "[entity](&#106;avascript:alert(1)) [tab](java\tscript:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [vb](vbscript:msgbox(1))",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    "<style>body{background:url(http://127.0.0.1:1/bg.png)}</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<javascript:alert(1)> and <http://127.0.0.1:1/ok>",
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "![x](javascript:alert(1)) ![y](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    r"$\includegraphics{http://127.0.0.1:1/k.png}$ $\htmlStyle{background:url(http://127.0.0.1:1/s)}{x}$",
    '[t](x "title" onmouseover=alert(1))',
    "```html\n<script>alert(1)</script>\n```",
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    "<p style=\"background-image:url('http://127.0.0.1:1/p.png')\">styled</p>",
]

INERT_CHECK = """() => {
    const thread = document.querySelector('#thread');
    const problems = [];
    for (const el of thread.querySelectorAll('script, iframe, object, embed, img, style, form, link, meta, base'))
        problems.push('element ' + el.tagName);
    for (const el of document.querySelectorAll('*')) {
        for (const attr of el.attributes) {
            const name = attr.name.toLowerCase();
            const value = attr.value.replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
            if (name.startsWith('on')) problems.push('handler ' + name + ' on ' + el.tagName);
            if (['href', 'src', 'xlink:href', 'action', 'formaction', 'data'].includes(name)
                && /^(javascript|vbscript|data):/.test(value)) problems.push(name + '=' + attr.value);
            if (name === 'style' && /url\\(/.test(value)) problems.push('style url ' + attr.value);
        }
    }
    for (const a of thread.querySelectorAll('a[href]')) {
        if (a.target !== '_blank' || a.rel !== 'noopener noreferrer')
            problems.push('link without rel/target ' + a.href);
    }
    return problems;
}"""


def test_payloads_typed_by_the_user_and_echoed_by_the_model_render_inert(page, web) -> None:
    web.engine.token_delay = 0
    for payload in PAYLOADS:
        send(page, payload)
        wait_reply_done(page)
    users = page.locator("article.msg-user .msg-body")
    expect(users).to_have_count(len(PAYLOADS))
    assert users.all_text_contents() == PAYLOADS  # user text is shown exactly, as text
    page.wait_for_timeout(300)
    assert page.evaluate(INERT_CHECK) == []
    assert page.evaluate("window.__xss === undefined")
    # A remote image became a link to click, not a fetch.
    image = page.locator("article.msg-assistant a.remote-image").first
    expect(image).to_have_attribute("href", "http://127.0.0.1:1/x.png")
    # Raw HTML is shown as text.
    expect(page.locator("article.msg-assistant").nth(1)).to_contain_text("<script>alert(1)</script>")
    page.reload()  # rendered again from the stored conversation
    expect(page.locator("article.msg")).to_have_count(2 * len(PAYLOADS))
    assert page.evaluate(INERT_CHECK) == []


def test_payloads_as_whole_model_replies_render_inert(page, web) -> None:
    turns = [(f"question {i}", payload) for i, payload in enumerate(PAYLOADS)]
    cid = import_conversation(web.url, conversation_file("hostile replies", turns))
    page.goto(f"{web.url}/c/{cid}")
    expect(page.locator("article.msg-assistant")).to_have_count(len(PAYLOADS))
    page.wait_for_timeout(300)
    assert page.evaluate(INERT_CHECK) == []
    blocked = page.locator("article.msg-assistant a.blocked-link")
    assert blocked.count() >= 5  # javascript:, JaVaScRiPt:, data:, vbscript: links lost their href
    expect(page.locator("article.msg-assistant").nth(1)).to_contain_text("<script>alert(1)</script>")
    # The fenced HTML is code, shown verbatim.
    expect(page.locator("article.msg-assistant pre code").last).to_contain_text("<script>alert(1)</script>")
    # KaTeX ran untrusted: \\href became no link.
    assert page.locator("article.msg-assistant .katex a").count() == 0


def test_clicking_a_remote_image_placeholder_opens_a_new_tab_without_referrer(page, web) -> None:
    cid = import_conversation(web.url, conversation_file("image", [("show", "![a cat](http://127.0.0.1:1/cat.png)")]))
    page.goto(f"{web.url}/c/{cid}")
    link = page.locator("a.remote-image")
    expect(link).to_contain_text("a cat")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    assert page.locator("#thread img").count() == 0
