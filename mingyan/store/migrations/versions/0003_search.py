"""Full-text search over message text and conversation titles, for Chinese and English.

SQLite: `search_documents` holds one row per message (its text) and one per conversation (its title),
keyed by an explicit INTEGER PRIMARY KEY, so the key survives VACUUM (the implicit rowid of `messages`,
whose primary key is TEXT, would not). `search_fts`, an FTS5 trigram index, is an external-content
index over `search_documents`. Triggers on `messages` and `conversations` keep the documents in step,
and triggers on `search_documents` keep the index in step with them.

PostgreSQL: pg_trgm GIN indexes on `messages.content` and `conversations.title` serve ILIKE queries.

Neither is modelled in tables.py (they are dialect-specific); tests/unit/test_store.py says so where it
compares the tables with the migrated schema.

On SQLite, a later migration that rebuilds `messages` or `conversations` with `batch_alter_table`
(copy, drop, rename) drops their triggers: it must create the search triggers again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SQLITE_TABLES = (
    """
    CREATE TABLE search_documents (
        id INTEGER PRIMARY KEY,
        conversation_id VARCHAR(32) NOT NULL,
        message_id VARCHAR(32),
        body TEXT NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX ix_search_documents_message_id ON search_documents (message_id)",
    "CREATE INDEX ix_search_documents_conversation_id ON search_documents (conversation_id)",
    """
    CREATE VIRTUAL TABLE search_fts USING fts5(
        body, content='search_documents', content_rowid='id', tokenize='trigram case_sensitive 0'
    )
    """,
)

SQLITE_BACKFILL = (
    """
    INSERT INTO search_documents (conversation_id, message_id, body)
    SELECT id, NULL, title FROM conversations
    """,
    """
    INSERT INTO search_documents (conversation_id, message_id, body)
    SELECT conversation_id, id, content FROM messages
    """,
    "INSERT INTO search_fts (search_fts) VALUES ('rebuild')",
)

SQLITE_TRIGGERS = {
    # The index follows the documents (the external-content pattern, keyed by search_documents.id).
    "search_documents_ai": """
        CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN
            INSERT INTO search_fts (rowid, body) VALUES (new.id, new.body);
        END
    """,
    "search_documents_ad": """
        CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN
            INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.id, old.body);
        END
    """,
    "search_documents_au": """
        CREATE TRIGGER search_documents_au AFTER UPDATE OF body ON search_documents BEGIN
            INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.id, old.body);
            INSERT INTO search_fts (rowid, body) VALUES (new.id, new.body);
        END
    """,
    # The documents follow the messages and the conversations' titles.
    "messages_search_ai": """
        CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN
            INSERT INTO search_documents (conversation_id, message_id, body)
            VALUES (new.conversation_id, new.id, new.content);
        END
    """,
    "messages_search_au": """
        CREATE TRIGGER messages_search_au AFTER UPDATE OF content ON messages
        WHEN new.content IS NOT old.content BEGIN
            UPDATE search_documents SET body = new.content WHERE message_id = old.id;
        END
    """,
    "messages_search_ad": """
        CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN
            DELETE FROM search_documents WHERE message_id = old.id;
        END
    """,
    "conversations_search_ai": """
        CREATE TRIGGER conversations_search_ai AFTER INSERT ON conversations BEGIN
            INSERT INTO search_documents (conversation_id, message_id, body) VALUES (new.id, NULL, new.title);
        END
    """,
    "conversations_search_au": """
        CREATE TRIGGER conversations_search_au AFTER UPDATE OF title ON conversations
        WHEN new.title IS NOT old.title BEGIN
            UPDATE search_documents SET body = new.title
            WHERE conversation_id = old.id AND message_id IS NULL;
        END
    """,
    # Its messages' documents go by their own trigger (ON DELETE CASCADE fires it); this catches the rest.
    "conversations_search_ad": """
        CREATE TRIGGER conversations_search_ad AFTER DELETE ON conversations BEGIN
            DELETE FROM search_documents WHERE conversation_id = old.id;
        END
    """,
}

POSTGRESQL_INDEXES = (
    ("ix_messages_content_trgm", "messages", "content"),
    ("ix_conversations_title_trgm", "conversations", "title"),
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in (*SQLITE_TABLES, *SQLITE_BACKFILL, *SQLITE_TRIGGERS.values()):
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, table, column in POSTGRESQL_INDEXES:
            op.create_index(name, table, [column], postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    else:
        raise NotImplementedError(f"search needs SQLite or PostgreSQL, not {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_fts")
        op.execute("DROP TABLE IF EXISTS search_documents")
    elif dialect == "postgresql":
        for name, table, _column in POSTGRESQL_INDEXES:
            op.drop_index(name, table_name=table)
        # pg_trgm stays: it may have been there before 0003, and other objects may use it.
