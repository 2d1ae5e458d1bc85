"""presence and auto-assignment: each expert's presence, and how a queue hands out tickets

``presence`` holds one row per expert who ever set one (``store.presence``): the state
(available, away, break), since when, and the last heartbeat of the desk that set it (None:
set from the CLI, held until changed); "away" after a missed heartbeat is worked out when read,
never written. ``queue.assign`` is ``pull`` (experts pull by hand, as before) or ``auto`` (the
desk assigns its oldest waiting ticket to the least-loaded available member: ``store.assign``).

Adding a column with a default is an ``ALTER TABLE ... ADD COLUMN`` on SQLite too (no table
copy), so the ticket table and its pull trigger are untouched.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "presence",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_presence_user_id_user")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_presence")),
    )
    op.add_column(
        "queue",
        sa.Column("assign", sa.String(length=8), nullable=False, server_default="pull"),
    )


def downgrade() -> None:
    with op.batch_alter_table("queue", schema=None) as batch_op:
        batch_op.drop_column("assign")
    op.drop_table("presence")
