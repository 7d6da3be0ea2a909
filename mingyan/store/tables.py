"""The schema: conversations, messages (a tree through parent_id) and accounts. Migrations mirror it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("system", "user", "assistant", "tool")  # tool: a tool's result in a tool loop (migration 0007)
STATUSES = ("complete", "streaming", "stopped", "error", "interrupted", "refused")


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    system_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    current_leaf_id: Mapped[str | None] = mapped_column(
        String(32),
        ForeignKey("messages.id", use_alter=True, name="fk_conversations_current_leaf", ondelete="SET NULL"),
        nullable=True,
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_conversations_owner_updated_at", "owner", "updated_at"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="complete")
    # Provenance: which model produced this, how, and at what cost.
    model_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sampling: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cached_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ttft_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Context: how many old turns did not fit the model's window and were left out (None: nothing).
    omitted_turns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why a reply ended in `error`
    # Tool loop (migration 0007): an assistant message's calls, or a tool message's provenance.
    tool: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The content-policy category that refused this reply (status `refused`; migration 0006).
    moderation: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The implicit AI-generated label of a reply: content attribute, provider, content id, model.
    ai_label: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ---- accounts (migration 0004) -----------------------------------------------------------------
# Secrets never reach these tables: passwords as argon2id hashes, session, CSRF and API-key tokens as
# sha256 hex digests. Conversations stay keyed by `owner` (a plain string: the user id for accounts).

USER_ROLES = ("admin", "user")


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64))  # as typed
    username_key: Mapped[str] = mapped_column(String(128))  # NFKC casefold: the unique, case-blind form
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_users_username_key", "username_key", unique=True),)


class LoginSession(Base):
    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the session token
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the CSRF token
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))  # the key's first characters, shown in lists
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the whole key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Narrower limits for this key (None: the user's own limits apply).
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    concurrent_streams: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_api_keys_key_hash", "key_hash", unique=True),)


class Quota(Base):
    """A user's limits; a None column means the server's default."""

    __tablename__ = "quotas"

    user_id: Mapped[str] = mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    concurrent_streams: Mapped[int | None] = mapped_column(Integer, nullable=True)


class UsageRecord(Base):
    """One served request. Outlives its user (user_id becomes NULL; the username snapshot stays)."""

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    username: Mapped[str] = mapped_column(String(64), default="")
    api_key_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True
    )
    route: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200), default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    __table_args__ = (
        Index("ix_usage_records_user_id_created_at", "user_id", "created_at"),
        Index("ix_usage_records_api_key_id_created_at", "api_key_id", "created_at"),
    )


class AuditEvent(Base):
    """Append-only (database triggers refuse UPDATE and DELETE). actor_id has no foreign key on purpose:
    deleting a user changes nothing here."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    event: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# ---- tool servers (migration 0007) ---------------------------------------------------------------


class ToolServer(Base):
    """An MCP server an administrator registered. `headers_secret` is encrypted (mingyan.tools.secrets)."""

    __tablename__ = "tool_servers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # stdio or http
    command: Mapped[str | None] = mapped_column(Text, nullable=True)
    args: Mapped[list[str]] = mapped_column(JSON, default=list)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    headers_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    side_effecting: Mapped[list[str]] = mapped_column(JSON, default=list)  # tool names that need approval
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_tool_servers_name", "name", unique=True),)


# ---- documents (migration 0005) ----------------------------------------------------------------
# An uploaded file, its original bytes (in the database: stored and deleted in the same transaction
# as its chunks, and carried by backups), its chunks and their BM25 postings; vectors as float32 blobs.


class DocumentFile(Base):
    __tablename__ = "document_files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # sniffed from the content: pdf, docx, html, csv, md, txt
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    chars: Mapped[int] = mapped_column(Integer)
    embedding_model: Mapped[str | None] = mapped_column(String(200), nullable=True)  # who made the vectors
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_document_files_owner_sha256", "owner", "sha256", unique=True),
        Index("ix_document_files_owner_created_at", "owner", "created_at"),
    )


class DocumentBlob(Base):
    __tablename__ = "document_blobs"

    file_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("document_files.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class DocumentChunk(Base):
    __tablename__ = "document_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(String(32), ForeignKey("document_files.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    page: Mapped[int] = mapped_column(Integer)
    start_offset: Mapped[int] = mapped_column(Integer)  # in the page's text
    end_offset: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(Integer)  # BM25 terms in the chunk
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # little-endian float32


class DocumentTerm(Base):
    """BM25 postings: how often each term occurs in each chunk."""

    __tablename__ = "document_terms"

    chunk_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("document_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_document_terms_owner_term", "owner", "term"),)


class MessageCitation(Base):
    """A passage a reply cited with [marker]: which file, page and characters (the text as cited)."""

    __tablename__ = "message_citations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(32), ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    marker: Mapped[int] = mapped_column(Integer)  # the n of [n] in the reply
    file_id: Mapped[str] = mapped_column(String(32), ForeignKey("document_files.id", ondelete="CASCADE"), index=True)
    page: Mapped[int] = mapped_column(Integer)
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class ServingStream(Base):
    """A reply running in some server process, counted against a concurrent-stream quota by every
    process on this database (mingyan.store.serving). The process renews `expires_at` while it runs;
    a crashed process's rows expire."""

    __tablename__ = "serving_streams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    subject: Mapped[str] = mapped_column(String(100), index=True)  # user:ID or key:ID
    process: Mapped[str] = mapped_column(String(100), index=True)
    expires_at: Mapped[float] = mapped_column(Float)  # Unix seconds


class ServingRequest(Base):
    """A request admitted in the last minute, counted against a requests-per-minute quota by every process."""

    __tablename__ = "serving_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(100))
    at: Mapped[float] = mapped_column(Float)  # Unix seconds

    __table_args__ = (Index("ix_serving_requests_subject_at", "subject", "at"),)


# ---- content safety (migration 0006) -----------------------------------------------------------

REPORT_STATUSES = ("open", "in_review", "resolved")
REPORT_REASONS = ("illegal", "violence", "sexual", "minors", "hate", "self_harm", "fraud", "privacy", "false", "other")


class Report(Base):
    """A user's report of a reply or a conversation. `content` is the reported text frozen as it was
    (no foreign keys: the report outlives the conversation and the reporter's account)."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    reporter_id: Mapped[str] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class KeywordBankVersion(Base):
    """An administrator's version of a keyword bank; the newest of a category replaces the shipped one."""

    __tablename__ = "keyword_banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[str] = mapped_column(String(32))
    phrases: Mapped[list[str]] = mapped_column(JSON, default=list)
    author: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReplyStopRequest(Base):
    """An administrator's request to stop a live reply, for the server process that generates it
    (API replicas: the process holding the reply polls these rows; migration 0009)."""

    __tablename__ = "reply_stop_requests"

    message_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requested_by: Mapped[str] = mapped_column(String(64), default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
