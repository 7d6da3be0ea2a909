"""What a reply shows besides its text: the AI-generated label, details (model, tokens, speed,
cache, finish reason), the omitted-turns notice, and stopped / error / interrupted badges; copy."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.helpers import conversation_file, import_conversation


def test_details_label_notice_and_badges(page, web) -> None:
    data = conversation_file("statuses", [("q1", "first answer"), ("q2", "half an ans"), ("q3", ""), ("q4", "cut off")])
    messages = data["conversations"][0]["messages"]
    messages[1].update(omitted_turns=3, completion_tokens=120, duration_ms=2000, cached_tokens=64, prompt_tokens=90)
    messages[3].update(status="stopped", finish_reason=None)
    messages[5].update(status="error", error="The server is busy. Retry shortly.")
    messages[7].update(status="interrupted")
    cid = import_conversation(web.url, data)
    page.goto(f"{web.url}/c/{cid}")
    replies = page.locator("article.msg-assistant")
    expect(replies).to_have_count(4)
    expect(replies.locator(".ai-label")).to_have_text(["AI-generated"] * 4)
    assert replies.evaluate_all("nodes => nodes.every((n) => n.dataset.aiGenerated === 'true')")
    expect(replies.nth(0).locator(".msg-notice")).to_have_text(
        "⚠ 3 earlier turns were left out of the model's context (the conversation is longer than the model can read)."
    )
    expect(replies.nth(1).locator(".msg-notice")).to_be_hidden()
    expect(replies.nth(0).locator(".msg-status")).to_be_hidden()
    expect(replies.nth(1).locator(".badge")).to_have_text("Stopped")
    expect(replies.nth(2).locator(".badge")).to_have_text("Error")
    expect(replies.nth(2).locator(".error-text")).to_have_text("The server is busy. Retry shortly.")
    expect(replies.nth(3).locator(".badge")).to_have_text("Interrupted")

    first = replies.nth(0)
    first.hover()
    first.locator("[data-action=details]").click()
    details = first.locator(".msg-details")
    expect(details.locator("[data-detail=detailModel]")).to_have_text("fake-model")
    expect(details.locator("[data-detail=detailCompletionTokens]")).to_have_text("120")
    expect(details.locator("[data-detail=detailSpeed]")).to_have_text("60.0 tok/s")
    expect(details.locator("[data-detail=detailCachedTokens]")).to_have_text("64")
    expect(details.locator("[data-detail=detailPromptTokens]")).to_have_text("90")
    expect(details.locator("[data-detail=detailFinish]")).to_have_text("stop")
    page.locator("#toggle-language").click()
    expect(details.locator("dt").first).to_have_text("模型")
    expect(replies.nth(1).locator(".badge")).to_have_text("已停止")
    expect(replies.nth(0).locator(".msg-notice")).to_contain_text("有 3 轮较早的对话未放入模型的上下文")
    first.locator("[data-action=details]").click()
    expect(details).to_be_hidden()


def test_copy_a_message_and_a_code_block(page, web, context) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web.url)
    answer = "Run this:\n\n```bash\necho 你好\n```"
    cid = import_conversation(web.url, conversation_file("copy", [("how?", answer)]))
    page.goto(f"{web.url}/c/{cid}")
    reply = page.locator("article.msg-assistant")
    expect(reply.locator(".code-lang")).to_have_text("bash")
    reply.locator(".code-copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == "echo 你好"
    reply.hover()
    reply.locator("[data-action=copy]").click()
    expect(reply.locator("[data-action=copy] .icon-check")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == answer
