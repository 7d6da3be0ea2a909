"""Content safety: a refused message's category and every reply's AI-generated label on `messages`.

`messages.moderation` holds the category of the content policy that refused a reply (status
`refused`); `messages.ai_label` the reply's implicit label (content attribute, provider, content id,
model). Added with ADD COLUMN (no table rebuild), so the search triggers of 0003 stay.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("moderation", sa.String(32), nullable=True))
    op.add_column("messages", sa.Column("ai_label", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "ai_label")
    op.drop_column("messages", "moderation")  # DROP COLUMN (SQLite >= 3.35): no rebuild, triggers kept
