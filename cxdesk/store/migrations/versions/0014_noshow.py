"""no-show recalls and "you're next": three ticket columns, the waiting index led by the band

- ``recalls``: how many times the customer was called back after not showing up
  (``cxdesk ticket noshow``, ``store.noshow``);
- ``queue_band``: 0 for a ticket put back at the head of its queue (a recall), 1 otherwise;
  a queue hands out band 0 first (``store.pull.queue_order``);
- ``near_front_at``: when the customer was told they are nearly next (``engine.near_front``):
  once per ticket, set by a conditional UPDATE so two dispatchers never both tell.

``ix_ticket_waiting`` becomes (team, band, created, id) over unowned tickets: the pull's order
(band, then oldest) is the index's, so a pull still reads one index entry. Ordering by
"recalled first" with an expression instead left both databases sorting every waiting ticket
of the team on each pull.

Plain ADD COLUMN and index statements (no table copy on SQLite): the pull trigger and the
expression index of 0013 stay.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("owner_id IS NULL")


def _waiting_index(columns: list[str]) -> None:
    op.drop_index("ix_ticket_waiting", table_name="ticket")
    op.create_index(
        "ix_ticket_waiting", "ticket", columns, postgresql_where=WAITING, sqlite_where=WAITING
    )


def upgrade() -> None:
    op.add_column("ticket", sa.Column("recalls", sa.Integer(), nullable=False, server_default="0"))
    op.add_column(
        "ticket", sa.Column("queue_band", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column("ticket", sa.Column("near_front_at", sa.DateTime(timezone=True), nullable=True))
    _waiting_index(["team_id", "queue_band", "created_at", "id"])


def downgrade() -> None:
    _waiting_index(["team_id", "created_at", "id"])
    # Plain DROP COLUMN (SQLite 3.35+): a batch would copy the table and lose its trigger.
    for column in ("near_front_at", "queue_band", "recalls"):
        op.execute(f"ALTER TABLE ticket DROP COLUMN {column}")
