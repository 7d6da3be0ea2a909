"""A conversation as readable Markdown: its current path, with each reply's provenance in one line.

Message text is written verbatim (it usually is Markdown already). Branches off the current path are
not shown; a line at the top says how many there are.
"""

from __future__ import annotations

import json
import re

from mingyan.store.conversations import ConversationStore, path_in
from mingyan.store.documents import CitationRow, citations_of
from mingyan.store.tables import Conversation, Message
from mingyan.store.transfer.checks import as_utc
from mingyan.store.transfer.read import messages_by_conversation, owned_conversations

ROLE_HEADINGS = {"system": "System", "user": "User", "assistant": "Assistant"}
NOTE_ERROR_CHARS = 200
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>#|~])")


def export_markdown(store: ConversationStore, owner: str, conversation_id: str) -> str:
    """The conversation's title, system prompt and current path (root → current leaf) as Markdown.

    A missing or another owner's conversation raises NotFound.
    """
    with store.reads() as session:  # one snapshot, without the write lock
        (conversation,) = owned_conversations(session, owner, [conversation_id])
        messages = messages_by_conversation(session, [conversation.id]).get(conversation.id, [])
        path = path_in(messages, conversation.current_leaf_id)
        cited = citations_of(session, owner, [m.id for m in path])
    blocks = [f"# {_one_line(conversation.title) or 'Untitled conversation'}", _about(conversation)]
    hidden = _other_branches(messages, path)
    if hidden:
        blocks.append(
            f"_{hidden} other branch{'es are' if hidden > 1 else ' is'} not shown; "
            f"export JSON to keep {'them' if hidden > 1 else 'it'}._"
        )
    if conversation.system_prompt:
        blocks += ["## System prompt", conversation.system_prompt]
    for message in path:
        blocks += [f"## {ROLE_HEADINGS.get(message.role, message.role)}", message.content]
        if message.role == "assistant":
            blocks += [provenance_note(message), ai_label_note(message)]
        if cited.get(message.id):
            blocks.append(sources_note(cited[message.id]))
    if not path:
        blocks.append("_No messages._")
    return "\n\n".join(blocks) + "\n"


def sources_note(citations: list[CitationRow]) -> str:
    """The passages a reply cited: marker, file, page and the quoted text."""
    lines = ["Sources:"]
    for c in citations:
        lines.append(f"- [{c.marker}] {_escape(c.file_name)}, page {c.page}: “{_one_line(c.text)}”")
    return "\n".join(lines)


def ai_label_note(message: Message) -> str:
    """The explicit AI-generated label (a visible line) and the implicit one (an HTML comment)."""
    label = message.ai_label or {}
    visible = "AI-generated content · 以上内容由人工智能生成"
    if provider := label.get("provider"):
        visible += f" · {provider}"
    note = f"*{_escape(_one_line(visible))}*"
    if label:
        note += (
            "\n<!-- ai-label: " + json.dumps(label, ensure_ascii=False, sort_keys=True).replace("--", "- -") + " -->"
        )
    return note


def provenance_note(message: Message) -> str:
    """One italic line: model, tokens, finish reason, and the status when it is not `complete`."""
    parts = [message.model_name or "unknown model"]
    tokens = []
    if message.prompt_tokens is not None:
        tokens.append(f"{message.prompt_tokens} prompt")
    if message.completion_tokens is not None:
        tokens.append(f"{message.completion_tokens} completion")
    if tokens:
        parts.append(" + ".join(tokens) + " tokens")
    if message.finish_reason:
        parts.append(f"finish: {message.finish_reason}")
    if message.status != "complete":
        status = f"status: {message.status}"
        if message.error:
            error = _one_line(message.error)
            status += f" ({error[:NOTE_ERROR_CHARS]}{'…' if len(error) > NOTE_ERROR_CHARS else ''})"
        parts.append(status)
    return "*" + " · ".join(_escape(_one_line(p)) for p in parts) + "*"


def _about(conversation: Conversation) -> str:
    created = as_utc(conversation.created_at).strftime("%Y-%m-%d %H:%M UTC")
    model = f"Model {_escape(_one_line(conversation.model))} · " if conversation.model else ""
    return f"_{model}Created {created} · exported from mingyan_"


def _other_branches(messages: list[Message], path: list[Message]) -> int:
    """Leaves of the tree that are not the end of the current path."""
    parents = {m.parent_id for m in messages if m.parent_id is not None}
    on_path = {m.id for m in path}
    return sum(1 for m in messages if m.id not in parents and m.id not in on_path)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)
