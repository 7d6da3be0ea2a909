"""The content policy over what users store besides their messages: an uploaded document's name and
text (refused before anything is indexed or stored) and the titles they give conversations. A block
is a 400 with code `content_filter`; a `log` match is counted and audited and let through."""

from __future__ import annotations

from collections.abc import Sequence

from mingyan.chat.service import ChatService
from mingyan.documents.service import Screen


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
