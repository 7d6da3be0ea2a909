"""Helpers shared by the browser tests: sending through the page, waiting for replies, building
conversations quickly through POST /api/import."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx

REPLY_DONE = "article.msg-assistant:not(.streaming)"


def send(page, text: str) -> None:
    box = page.locator("#composer-input")
    box.fill(text)
    box.press("Enter")


def last_reply(page):
    return page.locator("article.msg-assistant").last


def wait_reply_done(page, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "() => { const m = [...document.querySelectorAll('article.msg-assistant')].pop();"
        " return m && !m.classList.contains('streaming') && !document.querySelector('#composer[data-busy=true]'); }",
        timeout=timeout,
    )


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url + "/api", timeout=30)


def conversation_file(title: str, turns: list[tuple[str, str]], *, assistant_fields: dict | None = None) -> dict:
    """A mingyan export (version 1) holding one conversation of (question, answer) turns."""
    start = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    messages, parent = [], None
    for i, (question, answer) in enumerate(turns):
        for role, text in (("user", question), ("assistant", answer)):
            mid = uuid.uuid4().hex
            at = (start + timedelta(seconds=len(messages))).isoformat().replace("+00:00", "Z")
            message = {
                "id": mid,
                "parent_id": parent,
                "role": role,
                "content": text,
                "status": "complete",
                "created_at": at,
                "updated_at": at,
            }
            if role == "assistant":
                message.update(
                    {
                        "model_name": "fake-model",
                        "prompt_tokens": 20 + i,
                        "completion_tokens": len(text),
                        "cached_tokens": 10,
                        "finish_reason": "stop",
                        "ttft_ms": 12,
                        "duration_ms": 800,
                        **(assistant_fields or {}),
                    }
                )
            messages.append(message)
            parent = mid
    at = start.isoformat().replace("+00:00", "Z")
    conversation = {
        "id": uuid.uuid4().hex,
        "title": title,
        "model": "fake-model",
        "system_prompt": None,
        "settings": {},
        "pinned": False,
        "archived": False,
        "current_leaf_id": parent,
        "created_at": at,
        "updated_at": at,
        "messages": messages,
    }
    return {"format": "mingyan-conversations", "version": 1, "conversations": [conversation]}


def import_conversation(url: str, data: dict) -> str:
    with api(url) as client:
        r = client.post("/import", content=json.dumps(data, ensure_ascii=False).encode())
        assert r.status_code == 201, r.text
        return r.json()["conversation_ids"][0]
