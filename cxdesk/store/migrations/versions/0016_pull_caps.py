"""pull caps: user.max_open_tickets

An expert's own cap on open tickets (``store.caps``): NULL follows the desk's
``max_open_tickets`` setting, 0 is no cap for this user, N refuses a pull that would give them
an N+1th open ticket. A plain ADD COLUMN on both databases (no batch copy of ``user``).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user", sa.Column("max_open_tickets", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.drop_column("max_open_tickets")
