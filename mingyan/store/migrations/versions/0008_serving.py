"""Serving: quota counters shared by every server process on one database (API replicas).

Only new tables. `serving_streams` holds the replies running now (each process renews its rows;
a crashed process's rows expire); `serving_requests` the requests of the last minute.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_streams",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("process", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_serving_streams_subject", "serving_streams", ["subject"])
    op.create_index("ix_serving_streams_process", "serving_streams", ["process"])
    op.create_table(
        "serving_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_serving_requests_subject_at", "serving_requests", ["subject", "at"])


def downgrade() -> None:
    op.drop_table("serving_requests")
    op.drop_table("serving_streams")
