"""Administrators stop live replies in any server process: `reply_stop_requests` (one row per
reply an administrator stopped, polled by the process generating it).

Revision ID: 0009_reply_stops
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_reply_stops"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reply_stop_requests",
        sa.Column("message_id", sa.String(32), primary_key=True),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reply_stop_requests_requested_at", "reply_stop_requests", ["requested_at"])


def downgrade() -> None:
    op.drop_table("reply_stop_requests")
