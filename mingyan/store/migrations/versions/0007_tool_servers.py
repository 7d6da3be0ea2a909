"""Tool servers (MCP) and the tool loop's messages.

`tool_servers`: the MCP servers an administrator registered (their auth headers encrypted).
`messages.tool`: a nullable JSON column (an assistant message's calls, a tool result's provenance),
added with a plain ALTER TABLE ADD COLUMN, so the search triggers of 0003 stay. Messages of role
`tool` need no schema change (the role column is free text checked by the store).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tool_servers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("command", sa.Text, nullable=True),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("headers_secret", sa.Text, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("side_effecting", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tool_servers_name", "tool_servers", ["name"], unique=True)
    op.add_column("messages", sa.Column("tool", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "tool")
    op.drop_index("ix_tool_servers_name", table_name="tool_servers")
    op.drop_table("tool_servers")
