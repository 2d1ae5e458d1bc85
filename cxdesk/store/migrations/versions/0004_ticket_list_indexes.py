"""ticket list indexes: filtered by team (and status) newest first; counts by status

For the views of issue 5 on a big desk (measured on 100,000 tickets, SQLite; see
benchmarks/views.py):
- ``ix_ticket_team_status`` (team_id, status, created_at): "open tickets of team X", newest
  first, reads a page of the index instead of walking every ticket of the last month
  (filter page + summary 88 ms -> 14 ms);
- ``ix_ticket_created_status`` (created_at, status): the summary line's counts by status over
  a date range come from the index alone (75 ms -> 14 ms for a month of 33,000 tickets).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:45:00
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ticket_team_status", "ticket", ["team_id", "status", "created_at"])
    op.create_index("ix_ticket_created_status", "ticket", ["created_at", "status"])


def downgrade() -> None:
    op.drop_index("ix_ticket_created_status", table_name="ticket")
    op.drop_index("ix_ticket_team_status", table_name="ticket")
