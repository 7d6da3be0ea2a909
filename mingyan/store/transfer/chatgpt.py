"""Import ChatGPT's data export (`conversations.json`) as mingyan conversations.

The file is a list of conversations, each a tree of nodes (`mapping`) linked by `parent`, whose root
holds no message. What mingyan keeps: user, assistant and system messages with text content (parts
joined with "\\n"), their branches, the current node, each reply's model (`model_slug`) and time.
What it skips, counted in `ImportResult.skipped`: tool messages and text addressed to a tool
(`tool_messages`), messages of other
content types such as code or browsing results (`unsupported_messages`), empty system and empty hidden
messages (`empty_hidden_messages`) and non-text parts such as images (`non_text_parts`). A skipped
message's children are attached to its nearest kept ancestor, so branches survive. Everything gets
fresh mingyan ids. Keys this importer does not read are ignored (OpenAI adds new ones over time).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mingyan.store.conversations import PROVENANCE_FIELDS, ConversationStore
from mingyan.store.errors import ImportFormatError
from mingyan.store.tables import Conversation, Message, utcnow
from mingyan.store.transfer.checks import (
    MAX_CONVERSATIONS,
    MAX_MESSAGES,
    MAX_TEXT,
    check_storable,
    column_length,
    cycle_node,
    describe,
    excerpt,
    from_epoch,
    load_json,
    location,
)
from mingyan.store.transfer.read import parents_first
from mingyan.store.transfer.write import (
    ConversationRecord,
    ImportResult,
    write_conversations,
)

MAX_NODES = 5 * MAX_MESSAGES  # per conversation, tool calls and skipped nodes included
KEPT_ROLES = ("system", "user", "assistant")
TEXT_CONTENT = ("text", "multimodal_text")
FINISH_REASONS = {"stop": "stop", "max_tokens": "length"}


class _Lenient(BaseModel):
    """Strict types for what is read; unknown keys ignored."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Author(_Lenient):
    role: str


class Content(_Lenient):
    content_type: str
    parts: list[Any] | None = None


class FinishDetails(_Lenient):
    type: str | None = None


class Metadata(_Lenient):
    model_slug: str | None = None
    is_visually_hidden_from_conversation: bool | None = None
    finish_details: FinishDetails | None = None


class ChatMessage(_Lenient):
    author: Author
    content: Content
    create_time: float | None = None
    status: str | None = None
    metadata: Metadata | None = None
    recipient: str | None = None  # "all" (the conversation) or a tool the message calls


class Node(_Lenient):
    message: ChatMessage | None = None
    parent: str | None = None
    children: list[str] = Field(default_factory=list)


class ChatConversation(_Lenient):
    title: str | None = None
    create_time: float | None = None
    update_time: float | None = None
    mapping: Annotated[dict[str, Node], Field(max_length=MAX_NODES)]
    current_node: str | None = None
    default_model_slug: str | None = None
    is_archived: bool | None = None


EXPORT = TypeAdapter(Annotated[list[ChatConversation], Field(max_length=MAX_CONVERSATIONS)])


def import_chatgpt(store: ConversationStore, owner: str, data: bytes) -> ImportResult:
    """Import ChatGPT's conversations.json for `owner`: validated whole, then written in one transaction.

    Raises ImportFormatError, naming where the problem is (`[0].mapping["…"].parent: ...`), and then
    writes nothing. `remapped` is 0: every conversation gets fresh ids by design.
    """
    return import_chatgpt_value(store, owner, load_json(data))


def import_chatgpt_value(store: ConversationStore, owner: str, value: Any) -> ImportResult:
    records, skipped = parse_chatgpt(value)
    return write_conversations(store, owner, records, keep_ids=False, skipped=skipped)


def parse_chatgpt(value: Any) -> tuple[list[ConversationRecord], dict[str, int]]:
    """Validate a parsed conversations.json; records (keyed by node ids until written) and skip counts."""
    if not isinstance(value, list):
        raise ImportFormatError("ChatGPT's conversations.json must be a JSON list of conversations")
    try:
        conversations = EXPORT.validate_python(value)
    except ValidationError as error:
        raise describe(error) from None
    skipped: Counter[str] = Counter()
    records = [_convert(c, f"[{i}]", skipped, utcnow()) for i, c in enumerate(conversations)]
    return records, {k: n for k, n in sorted(skipped.items()) if n}


@dataclass(frozen=True)
class _Kept:
    id: str
    parent_id: str | None
    created_at: datetime
    values: dict[str, Any]


def _convert(conversation: ChatConversation, where: str, skipped: Counter[str], now: datetime) -> ConversationRecord:
    mapping = conversation.mapping
    parents = _checked_parents(mapping, where)
    created = _time(conversation.create_time, f"{where}.create_time") or now
    kept: dict[str, _Kept] = {}
    anchor: dict[str, str | None] = {}  # each node's nearest kept ancestor-or-self (None: the root)
    for node_id in _roots_first(parents):
        parent = parents[node_id]
        parent_id = anchor[parent] if parent is not None else None
        anchor[node_id] = parent_id
        message = mapping[node_id].message
        if message is None:
            continue
        node_where = location(where, ["mapping", node_id, "message"])
        values = _message_values(message, node_where, skipped)
        if values is None:
            continue
        at = _time(message.create_time, f"{node_where}.create_time")
        at = at or (kept[parent_id].created_at if parent_id else created)
        values.update(id=node_id, parent_id=parent_id, created_at=at, updated_at=at)
        kept[node_id] = _Kept(node_id, parent_id, at, values)
        anchor[node_id] = node_id
    if len(kept) > MAX_MESSAGES:
        raise ImportFormatError(f"{where}.mapping: has more than {MAX_MESSAGES:,} messages")
    return ConversationRecord(
        _conversation_row(conversation, where, created, _leaf(conversation, anchor, kept, where)),
        [k.values for k in parents_first(list(kept.values()))],
    )


def _checked_parents(mapping: dict[str, Node], where: str) -> dict[str, str | None]:
    """Each node's parent, every parent a node of the mapping, and no cycles."""
    parents = {node_id: node.parent for node_id, node in mapping.items()}
    for node_id, parent in parents.items():
        if parent is not None and parent not in parents:
            raise ImportFormatError(
                f"{location(where, ['mapping', node_id, 'parent'])}: no node {excerpt(parent)} in the mapping"
            )
    if (node := cycle_node(parents)) is not None:
        raise ImportFormatError(f"{location(where, ['mapping', node, 'parent'])}: the nodes' parents form a cycle")
    return parents


def _roots_first(parents: dict[str, str | None]) -> list[str]:
    """Node ids ordered so that every parent comes before its children (mapping order otherwise)."""
    children: dict[str | None, list[str]] = {}
    for node_id, parent in parents.items():
        children.setdefault(parent, []).append(node_id)
    ordered: list[str] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        node_id = stack.pop()
        ordered.append(node_id)
        stack.extend(reversed(children.get(node_id, [])))
    return ordered


def _message_values(message: ChatMessage, where: str, skipped: Counter[str]) -> dict[str, Any] | None:
    """A kept message's columns (without ids and times), or None when it is skipped."""
    role = message.author.role
    if role == "tool":
        skipped["tool_messages"] += 1
        return None
    if role not in KEPT_ROLES:
        raise ImportFormatError(
            f"{where}.author.role: must be one of {', '.join(KEPT_ROLES)}, tool (got {excerpt(role)})"
        )
    if message.content.content_type not in TEXT_CONTENT:
        skipped["unsupported_messages"] += 1
        return None
    if message.recipient not in (None, "all"):  # text addressed to a tool (memory, browser): a tool call
        skipped["tool_messages"] += 1
        return None
    content = _text(message.content.parts or [], f"{where}.content.parts", skipped)
    metadata = message.metadata or Metadata()
    if not content.strip() and (role == "system" or metadata.is_visually_hidden_from_conversation):
        skipped["empty_hidden_messages"] += 1
        return None
    values: dict[str, Any] = dict.fromkeys(PROVENANCE_FIELDS)
    values.update(role=role, content=content, status="complete", finish_reason=None)
    if role == "assistant":
        values["model_name"] = _bounded(metadata.model_slug, Message, "model_name", f"{where}.metadata.model_slug")
        finish = metadata.finish_details.type if metadata.finish_details else None
        values["finish_reason"] = FINISH_REASONS.get(finish or "")
        if message.status == "in_progress":
            values["status"] = "interrupted"
        elif finish == "interrupted":
            values["status"] = "stopped"
    return values


def _text(parts: list[Any], where: str, skipped: Counter[str]) -> str:
    texts = [part for part in parts if isinstance(part, str)]
    skipped["non_text_parts"] += len(parts) - len(texts)
    content = "\n".join(texts)
    if len(content) > MAX_TEXT:
        raise ImportFormatError(f"{where}: the text is longer than {MAX_TEXT:,} characters")
    check_storable(content, where)
    return content


def _leaf(
    conversation: ChatConversation, anchor: dict[str, str | None], kept: dict[str, _Kept], where: str
) -> str | None:
    """The current node, or its nearest kept ancestor; without a current node, the newest kept message."""
    current = conversation.current_node
    if current is None:
        return max(kept.values(), key=lambda k: (k.created_at, k.id)).id if kept else None
    if current not in anchor:
        raise ImportFormatError(f"{where}.current_node: no node {excerpt(current)} in the mapping")
    return anchor[current]


def _conversation_row(
    conversation: ChatConversation, where: str, created: datetime, leaf: str | None
) -> dict[str, Any]:
    updated = _time(conversation.update_time, f"{where}.update_time") or created
    return {
        "id": f"{where}",  # replaced by a fresh id when written
        "title": _bounded(conversation.title, Conversation, "title", f"{where}.title") or "",
        "model": _bounded(conversation.default_model_slug, Conversation, "model", f"{where}.default_model_slug") or "",
        "system_prompt": None,
        "settings": {},
        "pinned": False,
        "archived": bool(conversation.is_archived),
        "current_leaf_id": leaf,
        "created_at": created,
        "updated_at": max(updated, created),
    }


def _bounded(text: str | None, table: type[Conversation | Message], column: str, where: str) -> str | None:
    if text is None:
        return None
    limit = column_length(table, column)
    if len(text) > limit:
        raise ImportFormatError(f"{where}: must be at most {limit} characters (has {len(text):,})")
    check_storable(text, where)
    return text


def _time(seconds: float | None, where: str) -> datetime | None:
    return None if seconds is None else from_epoch(seconds, where)
