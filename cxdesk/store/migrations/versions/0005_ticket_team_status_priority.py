"""ticket list index: priority at the end of (team_id, status, created_at)

The filter of issue 5's "Done when" (high-priority open tickets of one team, last month) read
every open ticket of the team in the index, then each one's row for its priority. With
priority in the index, the count and the page check it there (measured on 100,000 tickets,
SQLite, page + summary: 10.7 ms -> 5.9 ms; 1,000 tickets: 3.8 ms). Queries without a priority
use the index exactly as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_ticket_team_status", table_name="ticket")
    op.create_index(
        "ix_ticket_team_status", "ticket", ["team_id", "status", "created_at", "priority"]
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_team_status", table_name="ticket")
    op.create_index("ix_ticket_team_status", "ticket", ["team_id", "status", "created_at"])
