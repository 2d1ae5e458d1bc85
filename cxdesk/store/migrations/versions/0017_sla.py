"""service levels: calendars, policies, alerts and each ticket's due times

``sla_calendar`` (desk hours: a zone, weekly hours, dated exceptions), ``sla_policy`` (targets
in desk minutes per team and priority), ``sla_alert`` (a warning or breach raised once per
ticket, target and clock start: its unique key) and, on ``ticket``, the policy that applied and
each target's due and warning times (``store.sla``). The ``paused`` status category needs no
schema: a status's category is a string.

The ticket columns are plain ``ALTER TABLE ... ADD COLUMN`` on both databases (no batch copy of
``ticket``, whose pull trigger a copy would drop), nullable, without an index: every index on
``ticket`` is written by every pull.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:40:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TICKET_TIMES = (
    "first_response_due_at",
    "first_response_warn_at",
    "first_responded_at",
    "next_response_since",
    "next_response_due_at",
    "next_response_warn_at",
    "next_responded_at",
    "resolution_due_at",
    "resolution_warn_at",
    "sla_paused_at",
)


def upgrade() -> None:
    op.create_table(
        "sla_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=True),
        sa.Column("exceptions", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_calendar")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_calendar_name")),
    )
    op.create_table(
        "sla_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("next_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("warn_percent", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"], name=op.f("fk_sla_policy_team_id_team")),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["sla_calendar.id"],
            name=op.f("fk_sla_policy_calendar_id_sla_calendar"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policy")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policy_name")),
    )
    op.create_table(
        "sla_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_sla_alert_ticket_id_ticket")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["event.id"], name=op.f("fk_sla_alert_event_id_event")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_alert")),
        sa.UniqueConstraint(
            "ticket_id", "target", "kind", "since", name=op.f("uq_sla_alert_ticket_id")
        ),
    )
    op.create_index(op.f("ix_sla_alert_ticket_id"), "sla_alert", ["ticket_id"])
    op.create_index(op.f("ix_sla_alert_created_at"), "sla_alert", ["created_at"])
    op.add_column("ticket", sa.Column("sla_policy_id", sa.Integer(), nullable=True))
    for name in TICKET_TIMES:
        op.add_column("ticket", sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        for name in ("sla_policy_id", *TICKET_TIMES):
            batch.drop_column(name)
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's batch copy of the table drops its triggers: the pull's log trigger
        # (migration 0006) is made again, as it was.
        op.execute(_pull_trigger().SQLITE_TRIGGER)
    op.drop_index(op.f("ix_sla_alert_created_at"), table_name="sla_alert")
    op.drop_index(op.f("ix_sla_alert_ticket_id"), table_name="sla_alert")
    op.drop_table("sla_alert")
    op.drop_table("sla_policy")
    op.drop_table("sla_calendar")


def _pull_trigger() -> ModuleType:
    path = Path(__file__).with_name("0006_pull_trigger.py")
    spec = importlib.util.spec_from_file_location("cxdesk_migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
