"""Full-text search across one owner's conversations: message text and titles, Chinese and English.

A query is split on whitespace into terms; a message (or a conversation's title) is a hit when it holds
every term as a substring, case-insensitively for Latin letters. There is no word segmentation, so
Chinese works as well as English. SQLite answers terms of 3+ characters from an FTS5 trigram index and
shorter terms (北京, 猫) by scanning the owner's text; PostgreSQL answers every term with ILIKE, which
pg_trgm GIN indexes speed up. The tables behind this are created by migration 0003.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    func,
    literal_column,
    null,
    select,
    table,
    union_all,
)

from mingyan.store.conversations import ConversationStore
from mingyan.store.tables import Conversation, Message

MAX_QUERY_CHARS = 200
TRIGRAM_CHARS = 3  # shorter terms cannot use a trigram index
SNIPPET_CHARS = 80
ELLIPSIS = "…"
SEARCHED_ROLES = ("user", "assistant")

# Migration 0003's SQLite objects (not part of tables.py: they exist on SQLite only).
_documents = table("search_documents", column("id"), column("conversation_id"), column("message_id"), column("body"))
_fts = table("search_fts", column("rowid"))


@dataclass(frozen=True)
class SearchHit:
    """One message (or one conversation title, when `message_id` is None) holding every query term."""

    conversation_id: str
    conversation_title: str
    message_id: str | None  # None: the conversation's title matched
    role: str | None  # "user" or "assistant"; None for a title
    snippet: str  # plain text, about SNIPPET_CHARS around the first match; "…" where it was cut
    match: list[tuple[int, int]]  # [start, end) of each term found in `snippet`, for highlighting
    updated_at: datetime  # the message's (or, for a title, the conversation's)
    archived: bool


def search(store: ConversationStore, owner: str, query: str, *, limit: int = 20, offset: int = 0) -> list[SearchHit]:
    """`owner`'s messages and conversation titles that hold every term of `query`, newest first.

    Archived conversations are included. Raises ValueError for an empty query, one longer than
    MAX_QUERY_CHARS, or a bad page.
    """
    terms = parse_query(query)
    if limit < 1 or offset < 0:
        raise ValueError(f"limit must be at least 1 and offset at least 0, not {limit} and {offset}")
    with store.reads() as session:
        dialect = session.get_bind().dialect.name
        if dialect not in _MATCHERS:
            raise NotImplementedError(f"search needs SQLite or PostgreSQL, not {dialect}")
        matches = _MATCHERS[dialect]
        rows = session.execute(_hits(owner, terms, matches).limit(limit).offset(offset)).all()
    return [_to_hit(row, terms) for row in rows]


def parse_query(query: str) -> list[str]:
    """The distinct whitespace-separated terms of `query`, in order."""
    stripped = query.strip()
    if not stripped:
        raise ValueError("the search query is empty: give at least one word")
    if len(stripped) > MAX_QUERY_CHARS:
        raise ValueError(f"the search query is {len(stripped)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    if "\x00" in stripped:
        raise ValueError("the search query contains a NUL character")
    try:
        stripped.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the search query is not valid Unicode text") from None
    return list(dict.fromkeys(stripped.split()))


def make_snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """About `width` characters of `text` (whitespace collapsed) around the first term found, and where
    each term occurs in that snippet. Terms hold no whitespace, so collapsing it never breaks a match."""
    flat = " ".join(text.split())
    pattern = _terms_pattern(terms)
    first = pattern.search(flat)
    if first is None:  # the database folds case a little differently: show the start
        start, end = 0, min(len(flat), width)
    else:
        lead = max(0, (width - (first.end() - first.start())) // 2)
        start = max(0, first.start() - lead)
        end = min(len(flat), max(start + width, first.end()))
        start = max(0, min(start, end - width))
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(flat) else ""
    shift = len(prefix) - start
    spans = [(m.start() + shift, m.end() + shift) for m in pattern.finditer(flat, start, end)]
    return prefix + flat[start:end] + suffix, spans


def escape_like(term: str) -> str:
    """`term` for a LIKE/ILIKE pattern with ESCAPE '\\': its `\\`, `%` and `_` stand for themselves."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fts5_phrases(terms: Sequence[str]) -> str:
    """An FTS5 query for all `terms` (AND), each a quoted phrase, so no character is syntax."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


# ---- statements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """What terms are matched against: a message's content or a conversation's title."""

    text: Any  # the column holding the text
    key: Any  # the id that search_documents refers to
    is_title: bool


_MESSAGE_TEXT = _Field(Message.content, Message.id, is_title=False)
_TITLE_TEXT = _Field(Conversation.title, Conversation.id, is_title=True)

Matcher = Callable[[_Field, Sequence[str]], ColumnElement[bool]]


def _sqlite_matches(field: _Field, terms: Sequence[str]) -> ColumnElement[bool]:
    """Long terms through the FTS5 trigram index; short ones by a substring scan (instr needs no escaping)."""
    long_terms = [t for t in terms if len(t) >= TRIGRAM_CHARS]
    clauses = [func.instr(func.lower(field.text), func.lower(t)) > 0 for t in terms if len(t) < TRIGRAM_CHARS]
    if long_terms:
        fts_match = literal_column("search_fts").op("MATCH")(fts5_phrases(long_terms))
        indexed = select(_fts.c.rowid).where(fts_match)
        document_key = _documents.c.conversation_id if field.is_title else _documents.c.message_id
        kind = _documents.c.message_id.is_(None) if field.is_title else _documents.c.message_id.is_not(None)
        clauses.append(field.key.in_(select(document_key).where(kind, _documents.c.id.in_(indexed))))
    return and_(*clauses)


def _postgresql_matches(field: _Field, terms: Sequence[str]) -> ColumnElement[bool]:
    return and_(*(field.text.ilike(f"%{escape_like(t)}%", escape="\\") for t in terms))


_MATCHERS: dict[str, Matcher] = {"sqlite": _sqlite_matches, "postgresql": _postgresql_matches}


def _hits(owner: str, terms: Sequence[str], matches: Matcher) -> Select[Any]:
    messages = (
        select(
            Conversation.id.label("conversation_id"),
            Conversation.title.label("conversation_title"),
            Message.id.label("message_id"),
            Message.role.label("role"),
            Message.content.label("text"),
            Message.updated_at.label("updated_at"),
            Conversation.archived.label("archived"),
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.owner == owner,
            Message.role.in_(SEARCHED_ROLES),
            Message.content != "",
            matches(_MESSAGE_TEXT, terms),
        )
    )
    titles = select(
        Conversation.id,
        Conversation.title,
        null(),
        null(),
        Conversation.title,
        Conversation.updated_at,
        Conversation.archived,
    ).where(Conversation.owner == owner, matches(_TITLE_TEXT, terms))
    hits = union_all(messages, titles).subquery()
    return select(hits).order_by(hits.c.updated_at.desc(), hits.c.conversation_id, hits.c.message_id.nulls_first())


def _to_hit(row: Any, terms: Sequence[str]) -> SearchHit:
    snippet, spans = make_snippet(row.text, terms)
    return SearchHit(
        conversation_id=row.conversation_id,
        conversation_title=row.conversation_title,
        message_id=row.message_id,
        role=row.role,
        snippet=snippet,
        match=spans,
        updated_at=row.updated_at,
        archived=bool(row.archived),
    )


def _terms_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    # Longest first, so where one term contains another the whole of the longer one is marked.
    alternatives = sorted(terms, key=len, reverse=True)
    return re.compile("|".join(re.escape(t) for t in alternatives), re.IGNORECASE)
