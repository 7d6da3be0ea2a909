"""Bodies of mingyan's own API for stored conversations: CRUD, replies, search, import results.

Unknown fields are refused here (unlike /v1): these are our own clients, and a typo must not be
silently ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from mingyan.api.schemas.documents import CitationOut
from mingyan.sampling import ConversationSettings, StoredSettings

MAX_OFFSET = 1_000_000  # far past any real list; keeps numbers a database can take

# Paging parameters shared by every list route.
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]

MAX_TITLE_CHARS = 200
MAX_SYSTEM_PROMPT_CHARS = 20_000
MAX_MESSAGE_CHARS = 100_000


def _without_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    if isinstance(value, list | tuple):
        for item in value:
            _without_nul(item)
    if isinstance(value, dict):
        for key, item in value.items():
            _without_nul(key)
            _without_nul(item)
    return value


class ApiModel(BaseModel):
    """Our own API's bodies: unknown fields refused, and no NUL character in any text (no database
    stores one, and no person types one)."""

    model_config = ConfigDict(extra="forbid")

    _no_nul = field_validator("*", mode="before")(_without_nul)


class GenerationSettings(ApiModel, ConversationSettings):
    """A conversation's sampling settings; a message can override any of them. The fields and their
    ranges are sampling.py's (the importers check with the same declaration)."""


class StoredConversationSettings(ApiModel, StoredSettings):
    """What a conversation stores: its generation settings and `tools`, the MCP tool servers switched
    on for it (enabled ones when chosen; messages sent without `tools` use them: docs/tools.md)."""


Title = Annotated[str, Field(max_length=MAX_TITLE_CHARS)]
SystemPrompt = Annotated[str, Field(max_length=MAX_SYSTEM_PROMPT_CHARS)]
MessageText = Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


ModelName = Annotated[str, Field(min_length=1, max_length=200)]


class ConversationCreate(ApiModel):
    title: Title = ""
    model: ModelName | None = None  # a chat model served here (default: the server's first)
    system_prompt: SystemPrompt | None = None
    settings: StoredConversationSettings = Field(default_factory=StoredConversationSettings)


class ConversationUpdate(ApiModel):
    """Only the fields present change. `system_prompt: null` removes the system prompt."""

    title: Title | None = None
    model: ModelName | None = None  # the next replies come from this model (served here)
    pinned: bool | None = None
    archived: bool | None = None
    system_prompt: SystemPrompt | None = None
    settings: StoredConversationSettings | None = None  # replaces the stored settings, `tools` included


class ReplyOptions(ApiModel):
    settings: GenerationSettings | None = None  # overrides for this reply only
    stream: bool = True
    # MCP tool servers (enabled ones, by name) this reply may use: the tool loop (docs/tools.md). Given
    # (`[]` too), they become the conversation's `settings.tools`; absent, the stored ones are used.
    tools: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=16)] | None = None


class MessageCreate(ReplyOptions):
    content: MessageText
    parent_id: str | None = None  # default: the conversation's current leaf
    file_ids: list[str] = Field(default_factory=list, max_length=20)  # the user's files to answer from

    _blank = field_validator("content")(_not_blank)


class MessageEdit(ReplyOptions):
    content: MessageText

    _blank = field_validator("content")(_not_blank)


class BranchSwitch(ApiModel):
    message_id: str


class StoredModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_serializer("created_at", "updated_at", check_fields=False)
    def _utc(self, value: datetime) -> str:
        # SQLite gives naive datetimes (written as UTC); PostgreSQL aware ones.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class MessageOut(StoredModel):
    id: str
    conversation_id: str
    parent_id: str | None
    role: str
    content: str
    status: str
    created_at: datetime
    updated_at: datetime
    model_name: str | None = None
    model_sha256: str | None = None
    sampling: dict[str, Any] | None = None
    seed: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    finish_reason: str | None = None
    ttft_ms: int | None = None
    duration_ms: int | None = None
    omitted_turns: int | None = None
    error: str | None = None
    tool: dict[str, Any] | None = None  # a tool loop's calls (assistant) or result provenance (tool)
    citations: list[CitationOut] = Field(default_factory=list)  # passages the reply cited ([n] markers)
    moderation: str | None = None  # a `refused` reply's content-policy category; `admin_stop`: an admin stopped it
    ai_label: dict[str, str] | None = None  # implicit AI-generated label (content attribute, provider, id)


class ConversationOut(StoredModel):
    id: str
    title: str
    model: str
    system_prompt: str | None
    settings: dict[str, Any]
    pinned: bool
    archived: bool
    current_leaf_id: str | None
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]  # the whole tree, oldest first
    current_path: list[str]  # ids from the root to the current leaf
    live: list[str]  # ids of replies being generated right now (attach to their events)


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConversationOut]
    has_more: bool


class ExchangeOut(BaseModel):
    user_message: MessageOut | None
    message: MessageOut
    omitted_turns: int


class SearchHitOut(StoredModel):
    conversation_id: str
    conversation_title: str
    message_id: str | None  # None: the title matched
    role: str | None
    snippet: str
    match: list[tuple[int, int]]  # [start, end) offsets of the query terms inside `snippet`
    updated_at: datetime
    archived: bool


class SearchResults(BaseModel):
    object: Literal["list"] = "list"
    data: list[SearchHitOut]
    has_more: bool


class ImportResultOut(BaseModel):
    conversation_ids: list[str]
    message_count: int
    remapped: int  # conversations given new ids because theirs were taken
    skipped: dict[str, int]  # what the file held that mingyan does not keep (ChatGPT tool messages, images)
