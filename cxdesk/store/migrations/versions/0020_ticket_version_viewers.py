"""ticket version and viewers: optimistic concurrency and presence on the ticket (issue 16)

``ticket.version`` counts the writes of a ticket row: every write bumps it (the ORM's
``version_id_col``, and ``version = version + 1`` in the pull's and the other Core updates),
so a writer can say which version it read (``ticket update --if-version N``) and be refused
when someone changed the ticket since. A plain ADD COLUMN with a default on both databases:
no batch copy of ``ticket`` (which would drop the pull trigger of 0006), and no index (every
pull writes it).

``ticket_viewer`` holds one row per open ticket screen (ticket, terminal), its user, its mode
(viewing or editing) and its last heartbeat (``store.ticket_presence``).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ticket", sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
    )
    op.create_table(
        "ticket_viewer",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("terminal", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_ticket_viewer_ticket_id_ticket")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_ticket_viewer_user_id_user")
        ),
        sa.PrimaryKeyConstraint("ticket_id", "terminal", name=op.f("pk_ticket_viewer")),
    )


def downgrade() -> None:
    op.drop_table("ticket_viewer")
    # Plain DROP COLUMN (SQLite 3.35+): a batch would copy the table and lose its trigger.
    op.execute("ALTER TABLE ticket DROP COLUMN version")
