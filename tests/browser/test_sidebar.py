"""The sidebar: rename, pin, archive (and the archived list), delete with confirmation, exports
as downloads, import from a file (with the server's answer, or its 400 message)."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.helpers import api, conversation_file, import_conversation

LIST = "#conversation-list .conv-item"


def item(page, title: str):
    return page.locator(LIST, has_text=title)


def menu(page, title: str, entry: str) -> None:
    row = item(page, title)
    row.hover()
    row.locator("[data-action=menu]").click()
    row.locator(f".menu [data-menu={entry}]").click()


def test_rename_pin_archive_and_delete(page, web) -> None:
    for title in ("first chat", "second chat", "third chat"):
        import_conversation(web.url, conversation_file(title, [(f"hello from {title}", "hi")]))
    page.reload()
    expect(page.locator(LIST)).to_have_count(3)

    menu(page, "second chat", "rename")
    page.locator("dialog.small input").fill("重命名的对话")
    page.locator("dialog.small button[value=ok]").click()
    expect(item(page, "重命名的对话")).to_have_count(1)

    menu(page, "third chat", "pin")
    expect(page.locator(LIST).first).to_contain_text("third chat")
    expect(page.locator(LIST).first).to_have_class("conv-item pinned")

    menu(page, "first chat", "archive")
    expect(item(page, "first chat")).to_have_count(0)
    page.locator("#show-archived").click()
    expect(page.locator(LIST)).to_have_count(1)
    expect(page.locator(LIST)).to_contain_text("first chat")
    menu(page, "first chat", "unarchive")
    expect(page.locator(LIST)).to_have_count(0)
    page.locator("#show-archived").click()
    expect(page.locator(LIST)).to_have_count(3)

    item(page, "重命名的对话").locator("a").click()
    expect(page.locator("article.msg-user .msg-body")).to_have_text("hello from second chat")
    expect(page.locator("#conversation-title")).to_have_text("重命名的对话")
    menu(page, "重命名的对话", "delete")
    page.locator("dialog.small button[value=cancel]").click()
    expect(page.locator(LIST)).to_have_count(3)
    menu(page, "重命名的对话", "delete")
    page.locator("dialog.small button[value=ok]").click()
    expect(page.locator(LIST)).to_have_count(2)
    expect(page).to_have_url(web.url + "/")  # the open chat was deleted: back to a new chat
    with api(web.url) as client:
        titles = sorted(c["title"] for c in client.get("/conversations").json()["data"])
    assert titles == ["first chat", "third chat"]


def test_exports_download_json_and_markdown(page, web) -> None:
    cid = import_conversation(web.url, conversation_file("导出测试", [("你好", "你好！有什么可以帮你？")]))
    page.reload()
    with page.expect_download() as download:
        menu(page, "导出测试", "exportJson")
    data = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert download.value.suggested_filename == f"{cid}.json"
    assert data["conversations"][0]["title"] == "导出测试"
    with page.expect_download() as download:
        menu(page, "导出测试", "exportMarkdown")
    assert download.value.suggested_filename == f"{cid}.md"
    assert "你好！有什么可以帮你？" in open(download.value.path(), encoding="utf-8").read()
    with page.expect_download() as download:
        page.locator("#export-all").click()
    assert download.value.suggested_filename.startswith("mingyan-")
    assert len(json.loads(open(download.value.path(), encoding="utf-8").read())["conversations"]) == 1


def test_import_a_file_and_see_the_result_or_the_error(page, web, page_watch, tmp_path) -> None:
    page_watch.expect_error("status of 400")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(conversation_file("imported chat", [("q", "a"), ("q2", "a2")])), encoding="utf-8")
    with page.expect_file_chooser() as chooser:
        page.locator("#import-button").click()
    chooser.value.set_files(str(good))
    expect(page.locator(".toast")).to_have_text("Imported 1 chat (4 messages).")
    expect(item(page, "imported chat")).to_have_count(1)

    bad = tmp_path / "bad.json"
    broken = conversation_file("broken", [("q", "a")])
    broken["conversations"][0]["messages"][0]["role"] = "robot"
    bad.write_text(json.dumps(broken), encoding="utf-8")
    with page.expect_file_chooser() as chooser:
        page.locator("#import-button").click()
    chooser.value.set_files(str(bad))
    error = page.locator(".toast.error")
    expect(error).to_contain_text("Import failed")
    expect(error).to_contain_text("robot")
    expect(page.locator(LIST)).to_have_count(1)
