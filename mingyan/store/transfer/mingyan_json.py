"""Export and import conversations: mingyan's own lossless JSON, readable Markdown, ChatGPT's export.

mingyan's format (version 1) is one JSON object::

    {"format": "mingyan-conversations", "version": 1, "conversations": [
        {"id", "title", "model", "system_prompt", "settings", "pinned", "archived", "current_leaf_id",
         "created_at", "updated_at", "messages": [{every Message column but conversation_id}, ...]}]}

A reply that cited passages of the user's files also carries "citations" (store/transfer/citations.py);
a message without citations has no such key.

Every message of every branch is kept, parents before children, then by (created_at, id). Timestamps
are ISO 8601 UTC with microseconds and "Z". The bytes are deterministic: exporting what was imported
gives the same bytes back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from mingyan.sampling import StoredSettings
from mingyan.store.conversations import ConversationStore
from mingyan.store.errors import ImportFormatError
from mingyan.store.tables import ROLES, STATUSES, Conversation, Message
from mingyan.store.transfer.chatgpt import import_chatgpt, parse_chatgpt
from mingyan.store.transfer.checks import (
    INT32,
    MAX_CONVERSATIONS,
    MAX_MESSAGES,
    MAX_TEXT,
    check_id,
    check_strings,
    column_length,
    cycle_node,
    describe,
    excerpt,
    format_timestamp,
    load_json,
    max_chars,
    one_of,
    parse_timestamp,
)
from mingyan.store.transfer.citations import Citations, exported_citations
from mingyan.store.transfer.markdown import export_markdown
from mingyan.store.transfer.read import (
    messages_by_conversation,
    owned_conversations,
    parents_first,
)
from mingyan.store.transfer.write import (
    ConversationRecord,
    ImportResult,
    write_conversations,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "ImportFormatError",
    "ImportResult",
    "export_json",
    "export_markdown",
    "import_chatgpt",
    "import_file",
    "import_json",
]

FORMAT = "mingyan-conversations"
VERSION = 1

# ---- the file's schema: one declaration, read by the exporter and enforced on import ------------

Id = Annotated[str, AfterValidator(check_id)]
Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]
Int32 = Annotated[int, Field(ge=INT32[0], le=INT32[1])]
LongText = Annotated[str, AfterValidator(max_chars(MAX_TEXT))]


def _sized(table: type[Conversation | Message], column: str) -> AfterValidator:
    """No longer than the column holds (tables.py is the one declaration of the lengths)."""
    return AfterValidator(max_chars(column_length(table, column)))


# Spelled out as Annotated[str, ...] so that type checkers see type aliases of str.
Title = Annotated[str, _sized(Conversation, "title")]
ModelSlug = Annotated[str, _sized(Conversation, "model")]
ModelName = Annotated[str, _sized(Message, "model_name")]
Sha256 = Annotated[str, _sized(Message, "model_sha256")]
FinishReason = Annotated[str, _sized(Message, "finish_reason")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MessageEntry(_Strict):
    id: Id
    parent_id: Id | None = None
    role: Annotated[str, AfterValidator(one_of(ROLES))]
    content: LongText
    status: Annotated[str, AfterValidator(one_of(STATUSES))] = "complete"
    model_name: ModelName | None = None
    model_sha256: Sha256 | None = None
    sampling: dict[str, Any] | None = None
    seed: Int32 | None = None
    prompt_tokens: Int32 | None = None
    completion_tokens: Int32 | None = None
    cached_tokens: Int32 | None = None
    finish_reason: FinishReason | None = None
    ttft_ms: Int32 | None = None
    duration_ms: Int32 | None = None
    omitted_turns: Int32 | None = None
    error: LongText | None = None
    tool: dict[str, Any] | None = None  # a tool loop's calls or result provenance (docs/tools.md)
    moderation: Annotated[str, _sized(Message, "moderation")] | None = None
    ai_label: dict[str, str] | None = None
    citations: Citations | None = None  # not a column: message_citations rows (only when it cited)
    created_at: Timestamp
    updated_at: Timestamp


class ConversationEntry(_Strict):
    id: Id
    title: Title = ""
    model: ModelSlug = ""
    system_prompt: LongText | None = None
    settings: StoredSettings = Field(default_factory=StoredSettings)  # the API's rules
    pinned: bool = False
    archived: bool = False
    current_leaf_id: Id | None = None
    created_at: Timestamp
    updated_at: Timestamp
    messages: Annotated[list[MessageEntry], Field(max_length=MAX_MESSAGES)] = Field(default_factory=list)


class ExportFile(_Strict):
    format: str
    version: int
    notice: str | None = None  # the explicit AI-generated label of the file's assistant messages
    conversations: Annotated[list[ConversationEntry], Field(max_length=MAX_CONVERSATIONS)]


EXPORT_NOTICE = "Assistant messages are AI-generated content (以上助手消息由人工智能生成); each carries its ai_label."
CONVERSATION_FIELDS = tuple(name for name in ConversationEntry.model_fields if name != "messages")
MESSAGE_FIELDS = tuple(name for name in MessageEntry.model_fields if name != "citations")
TIMESTAMP_FIELDS = frozenset({"created_at", "updated_at"})

# ---- export -------------------------------------------------------------------------------------


def export_json(store: ConversationStore, owner: str, conversation_ids: Sequence[str] | None = None) -> bytes:
    """`owner`'s conversations (all of them, oldest first, when `conversation_ids` is None) as UTF-8 JSON.

    An id that is missing or another owner's raises NotFound. Repeated ids are exported once.
    """
    with store.reads() as session:  # one snapshot, without the write lock
        conversations = owned_conversations(session, owner, conversation_ids)
        messages = messages_by_conversation(session, [c.id for c in conversations])
        cited = exported_citations(session, owner, [m.id for ms in messages.values() for m in ms])
    document = {
        "format": FORMAT,
        "version": VERSION,
        "notice": EXPORT_NOTICE,
        "conversations": [_conversation_entry(c, messages.get(c.id, []), cited) for c in conversations],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _conversation_entry(
    conversation: Conversation, messages: list[Message], cited: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    entry = {name: _exported(conversation, name) for name in CONVERSATION_FIELDS}
    entry["messages"] = [_message_entry(m, cited.get(m.id)) for m in parents_first(messages)]
    return entry


def _message_entry(message: Message, citations: list[dict[str, Any]] | None) -> dict[str, Any]:
    entry = {name: _exported(message, name) for name in MESSAGE_FIELDS}
    if citations:
        entry["citations"] = citations
    return entry


def _exported(row: Conversation | Message, name: str) -> Any:
    value = getattr(row, name)
    return format_timestamp(value) if name in TIMESTAMP_FIELDS else value


# ---- import -------------------------------------------------------------------------------------


def import_json(store: ConversationStore, owner: str, data: bytes) -> ImportResult:
    """Import a mingyan export for `owner`: validated whole first, then written in one transaction.

    A conversation keeps its ids when none of them (its own, its messages') exists in the database for
    any owner; otherwise it and its messages get fresh ids (parent_id and current_leaf_id follow).
    A message still `streaming` in the file was cut off mid-reply; it is imported as `interrupted`.
    Raises ImportFormatError, naming where the problem is, and then writes nothing.
    """
    return import_json_value(store, owner, load_json(data))


def import_file(
    store: ConversationStore,
    owner: str,
    data: bytes,
    *,
    screen: Callable[[Sequence[ConversationRecord]], None] | None = None,
) -> ImportResult:
    """Import either format: a mingyan export (a JSON object) or ChatGPT's conversations.json (a list).
    `screen` (the content policy) sees every parsed conversation before anything is written; it
    raises to refuse the whole file."""
    value = load_json(data)
    skipped: dict[str, int] | None = None
    if isinstance(value, dict):
        records, keep_ids = parse_export(value), True
    elif isinstance(value, list):
        (records, skipped), keep_ids = parse_chatgpt(value), False
    else:
        raise ImportFormatError(
            'the file is neither a mingyan export (a JSON object with "format": "mingyan-conversations") '
            "nor ChatGPT's conversations.json (a JSON list)"
        )
    if screen is not None:
        screen(records)
    return write_conversations(store, owner, records, keep_ids=keep_ids, skipped=skipped)


def import_json_value(store: ConversationStore, owner: str, value: Any) -> ImportResult:
    records = parse_export(value)
    return write_conversations(store, owner, records, keep_ids=True)


def parse_export(value: Any) -> list[ConversationRecord]:
    """Validate a parsed mingyan export completely; its conversations as records ready to write."""
    if not isinstance(value, dict):
        raise ImportFormatError(f'the file must be a JSON object with "format": "{FORMAT}"')
    if value.get("format") != FORMAT:
        raise ImportFormatError(f'format: must be "{FORMAT}" (got {_brief(value.get("format"))})')
    version = value.get("version")
    if type(version) is not int or version != VERSION:
        raise ImportFormatError(f"version: this mingyan reads version {VERSION} files (got {_brief(version)})")
    check_strings(value, "")
    try:
        parsed = ExportFile.model_validate(value)
    except ValidationError as error:
        raise describe(error) from None
    _check_ids_unique(parsed.conversations)
    for index, conversation in enumerate(parsed.conversations):
        _check_tree(conversation, f"conversations[{index}]")
    return [_record(c) for c in parsed.conversations]


def _brief(value: Any) -> str:
    return excerpt(value) if value is None or isinstance(value, (str, int, float, bool)) else type(value).__name__


def _check_ids_unique(conversations: Sequence[ConversationEntry]) -> None:
    conversation_at: dict[str, int] = {}
    message_at: dict[str, str] = {}
    for ci, conversation in enumerate(conversations):
        where = f"conversations[{ci}]"
        if conversation.id in conversation_at:
            raise ImportFormatError(
                f"{where}.id: {excerpt(conversation.id)} is already the id of "
                f"conversations[{conversation_at[conversation.id]}]"
            )
        conversation_at[conversation.id] = ci
        for mi, message in enumerate(conversation.messages):
            if message.id in message_at:
                raise ImportFormatError(
                    f"{where}.messages[{mi}].id: {excerpt(message.id)} is already the id of {message_at[message.id]}"
                )
            message_at[message.id] = f"{where}.messages[{mi}]"


def _check_tree(conversation: ConversationEntry, where: str) -> None:
    """Parents inside the conversation, no cycles, the current leaf one of its messages."""
    index = {m.id: i for i, m in enumerate(conversation.messages)}
    parent = {m.id: m.parent_id for m in conversation.messages}
    for i, message in enumerate(conversation.messages):
        if message.parent_id is not None and message.parent_id not in index:
            raise ImportFormatError(
                f"{where}.messages[{i}].parent_id: no message {excerpt(message.parent_id)} in this conversation"
            )
    if (node := cycle_node(parent)) is not None:
        raise ImportFormatError(f"{where}.messages[{index[node]}].parent_id: the messages' parents form a cycle")
    leaf = conversation.current_leaf_id
    if leaf is not None and leaf not in index:
        raise ImportFormatError(f"{where}.current_leaf_id: no message {excerpt(leaf)} in this conversation")


def _record(conversation: ConversationEntry) -> ConversationRecord:
    row = {name: getattr(conversation, name) for name in CONVERSATION_FIELDS}
    row["settings"] = conversation.settings.values()
    messages = []
    citations: dict[str, list[dict[str, Any]]] = {}
    for message in parents_first(conversation.messages):
        values = message.model_dump()
        if cited := values.pop("citations"):
            citations[message.id] = cited
        if values["status"] == "streaming":
            values["status"] = "interrupted"
        messages.append(values)
    return ConversationRecord(row, messages, citations)
