"""Documents: uploaded files with their original bytes, chunks (page and offsets, vectors as
float32 blobs), BM25 postings, and the passages replies cite. Only new tables (`messages` is not
rebuilt, so the search triggers of 0003 stay).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _file_fk() -> sa.ForeignKey:
    return sa.ForeignKey("document_files.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "document_files",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("chars", sa.Integer, nullable=False),
        sa.Column("embedding_model", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_document_files_owner_sha256", "document_files", ["owner", "sha256"], unique=True)
    op.create_index("ix_document_files_owner_created_at", "document_files", ["owner", "created_at"])
    op.create_table(
        "document_blobs",
        sa.Column("file_id", sa.String(32), _file_fk(), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "document_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_id", sa.String(32), _file_fk(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("start_offset", sa.Integer, nullable=False),
        sa.Column("end_offset", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("length", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_document_chunks_file_id", "document_chunks", ["file_id"])
    op.create_index("ix_document_chunks_owner", "document_chunks", ["owner"])
    op.create_table(
        "document_terms",
        sa.Column("chunk_id", sa.Integer, sa.ForeignKey("document_chunks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("term", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_document_terms_owner_term", "document_terms", ["owner", "term"])
    op.create_table(
        "message_citations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(32), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("marker", sa.Integer, nullable=False),
        sa.Column("file_id", sa.String(32), _file_fk(), nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("start_offset", sa.Integer, nullable=False),
        sa.Column("end_offset", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_message_citations_message_id", "message_citations", ["message_id"])
    op.create_index("ix_message_citations_file_id", "message_citations", ["file_id"])


def downgrade() -> None:
    for table in ("message_citations", "document_terms", "document_chunks", "document_blobs", "document_files"):
        op.drop_table(table)
