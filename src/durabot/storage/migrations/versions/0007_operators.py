"""The operator console's own tables: operators and their sessions, the audit of what they did, case reviews.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-16
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("name", name="uq_operators_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "operator_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("operator_id", _id, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_operator_sessions"),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name="fk_operator_sessions_operator_id_operators", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_operator_sessions_expires_at", "operator_sessions", ["expires_at"])
    op.create_table(
        "operator_audit",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("operator_name", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("detail", _json, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_audit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_operator_audit_at", "operator_audit", ["at"])
    op.create_table(
        "case_reviews",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_reviews"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"], name="fk_case_reviews_case_id_cases", ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("case_reviews")
    op.drop_index("ix_operator_audit_at", table_name="operator_audit")
    op.drop_table("operator_audit")
    op.drop_index("ix_operator_sessions_expires_at", table_name="operator_sessions")
    op.drop_table("operator_sessions")
    op.drop_table("operators")
