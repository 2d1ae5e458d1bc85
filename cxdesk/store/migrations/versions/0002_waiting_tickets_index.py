"""waiting tickets index: a partial index of unowned tickets for pulls and queue counts

Replaces ``ix_ticket_pull`` (team_id, owner_id, created_at), which PostgreSQL could not use
for ``owner_id IS NULL ORDER BY created_at``: every pull scanned the team's whole history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:23:02.727516
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("owner_id IS NULL")


def upgrade() -> None:
    op.drop_index("ix_ticket_pull", table_name="ticket")
    op.create_index(
        "ix_ticket_waiting",
        "ticket",
        ["team_id", "created_at", "id"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_waiting", table_name="ticket")
    op.create_index("ix_ticket_pull", "ticket", ["team_id", "owner_id", "created_at"])
