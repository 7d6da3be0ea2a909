"""The content policy over what users store besides their messages: an uploaded document's name and
text (refused before anything is indexed or stored), the titles they give conversations, and the
conversations they import (titles and every message, refused before anything is written). A block
is a 400 with code `content_filter`; a `log` match is counted and audited and let through."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mingyan.chat.service import ChatService
from mingyan.documents.service import Screen
from mingyan.store.transfer.write import ConversationRecord


def document_screen(chat: ChatService) -> Screen | None:
    """The screen DocumentService runs on each new file (None: no content policy)."""
    safety = chat.safety
    if safety is None:
        return None

    def screen(owner: str, texts: Sequence[str]) -> None:
        safety.screen(texts, owner=owner, param="file", stage="document")

    return screen


def screen_title(chat: ChatService, owner: str, title: str | None) -> None:
    """Refuse a conversation title the content policy blocks (ContentFiltered, param `title`)."""
    if chat.safety is not None and title:
        chat.safety.screen([title], owner=owner, param="title", stage="title")


def import_screen(chat: ChatService, owner: str) -> Callable[[Sequence[ConversationRecord]], None] | None:
    """The screen an import runs on its parsed conversations before writing any (None: no content
    policy): each title as a title, each conversation's messages together as imported text. A block
    refuses the whole file, naming the conversation (param `conversations[i]`)."""
    safety = chat.safety
    if safety is None:
        return None

    def screen(records: Sequence[ConversationRecord]) -> None:
        for index, record in enumerate(records):
            title = record.row.get("title")
            if title:
                safety.screen([title], owner=owner, param=f"conversations[{index}].title", stage="title")
            texts = [m["content"] for m in record.messages if m.get("content")]
            if texts:
                safety.screen(texts, owner=owner, param=f"conversations[{index}]", stage="import")

    return screen
