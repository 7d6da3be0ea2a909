"""Documents in the web chat (real Chromium, fake engine, real SQLite): attach a PDF with the
composer's button, see its upload and reading progress, send a question, and open the passage a
citation chip points at; a file dropped on the composer is attached too."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.helpers import last_reply, send, wait_reply_done
from tests.doc_files import make_docx, make_pdf

POEM = ["静夜思，李白。床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"]
RECORD_STATES = """() => {
  window.chipStates = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      const nodes = change.type === "attributes" ? [change.target] : [...change.addedNodes];
      for (const node of nodes) if (node.dataset && node.dataset.state) window.chipStates.push(node.dataset.state);
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
}"""


def test_attach_a_pdf_ask_and_open_the_cited_passage(page, web) -> None:
    page.evaluate(RECORD_STATES)
    page.locator("#attach-input").set_input_files(
        {"name": "poem.pdf", "mimeType": "application/pdf", "buffer": make_pdf(POEM)}
    )
    chip = page.locator(".attach-chip")
    expect(chip).to_have_attribute("data-state", "ready")
    expect(chip.locator(".attach-name")).to_have_text("poem.pdf")
    states = page.evaluate("window.chipStates")
    assert states[0] == "uploading" and states[-1] == "ready", states
    web.engine.replies.append("诗人思念故乡[2]。")
    send(page, "诗人思念什么？")
    wait_reply_done(page)
    expect(page.locator(".attach-chip")).to_have_count(0)  # the file went with the message
    request = web.engine.requests[-1]
    assert "低头思故乡" in web.engine.detokenize(request.prompt_tokens)
    citation = last_reply(page).locator(".citation-chip")
    expect(citation).to_have_text("[2] poem.pdf · page 2")
    citation.click()
    expect(page.locator("#passage-dialog mark")).to_have_text("举头望明月，低头思故乡。")
    page.reload()
    page.wait_for_selector("html[data-ready=true]")
    expect(last_reply(page).locator(".citation-chip")).to_have_text("[2] poem.pdf · page 2")  # stored


def test_a_file_dropped_on_the_composer_is_attached(page, web) -> None:
    data = list(make_docx([["Dropped text."]]))
    page.evaluate(
        """(bytes) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([new Uint8Array(bytes)], "notes.docx"));
          const drop = new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true });
          document.querySelector("#composer").dispatchEvent(drop);
        }""",
        data,
    )
    expect(page.locator(".attach-chip")).to_have_attribute("data-state", "ready")
    expect(page.locator(".attach-chip .attach-name")).to_have_text("notes.docx")
