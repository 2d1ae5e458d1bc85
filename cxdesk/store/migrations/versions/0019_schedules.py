"""scheduled workflows: a schedule or a delay on a workflow, and each occurrence once

``workflow.schedule`` (cron's five fields or a friendly form, in the desk's ``time_zone``
setting) with ``schedule_since`` (no run before it is caught up), or ``delay_minutes`` after
the workflow's event. ``workflow_occurrence`` holds one row per run: the unique (workflow,
key) makes each run once whichever worker gets there first (``engine.scheduled``).

Plain ADD COLUMN and CREATE TABLE on both databases (no batch copy).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workflow", sa.Column("schedule", sa.String(length=100), nullable=True))
    op.add_column(
        "workflow", sa.Column("schedule_since", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("workflow", sa.Column("delay_minutes", sa.Integer(), nullable=True))
    op.create_table(
        "workflow_occurrence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_workflow_occurrence_event_id_event")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_workflow_occurrence_ticket_id_ticket")
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_workflow_occurrence_workflow_id_workflow"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_occurrence")),
        sa.UniqueConstraint("workflow_id", "key", name=op.f("uq_workflow_occurrence_workflow_id")),
    )
    op.create_index(
        "ix_workflow_occurrence_due",
        "workflow_occurrence",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("ran_at IS NULL"),
        sqlite_where=sa.text("ran_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_occurrence_due", table_name="workflow_occurrence")
    op.drop_table("workflow_occurrence")
    with op.batch_alter_table("workflow") as batch:
        batch.drop_column("delay_minutes")
        batch.drop_column("schedule_since")
        batch.drop_column("schedule")
