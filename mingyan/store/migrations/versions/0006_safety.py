"""Content safety: a refused message's category on `messages`.

`messages.moderation` holds the category of the content policy that refused a reply (status
`refused`). Added with ADD COLUMN (no table rebuild), so the search triggers of 0003 stay.

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


def downgrade() -> None:
    op.drop_column("messages", "moderation")  # DROP COLUMN (SQLite >= 3.35): no rebuild, triggers kept
