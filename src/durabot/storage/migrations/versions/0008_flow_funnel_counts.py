"""The flow funnel kept per day: conversations started, steps reached, conversations completed, cancelled or expired.

One row per ``(day, flow, event, step)`` with its ``count``; each worker adds what it counted since its
last flush (an upsert), so the console can show the funnel over any period.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-17
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
        "flow_funnel_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("step", sa.String(128), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "flow", "event", "step", name="pk_flow_funnel_counts"),
    )


def downgrade() -> None:
    op.drop_table("flow_funnel_counts")
