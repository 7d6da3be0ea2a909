"""Content safety: a refused message's category and every reply's AI-generated label on `messages`.

`messages.moderation` holds the category of the content policy that refused a reply (status
`refused`); `messages.ai_label` the reply's implicit label (content attribute, provider, content id,
model). Added with ADD COLUMN (no table rebuild), so the search triggers of 0003 stay.

New tables: `reports` (users' reports with the reported content frozen, the review and its answer)
and `keyword_banks` (administrators' versions of the keyword banks).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("moderation", sa.String(32), nullable=True))
    op.add_column("messages", sa.Column("ai_label", sa.JSON(), nullable=True))
    op.create_table(
        "reports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("reporter_id", sa.String(64), nullable=False, index=True),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("reviewer_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "keyword_banks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("category", sa.String(32), nullable=False, index=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("phrases", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("keyword_banks")
    op.drop_table("reports")
    op.drop_column("messages", "ai_label")
    op.drop_column("messages", "moderation")  # DROP COLUMN (SQLite >= 3.35): no rebuild, triggers kept
