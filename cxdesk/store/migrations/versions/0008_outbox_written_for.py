"""outbox: what a message was written for, and until when it is worth sending

A queued message remembers its ticket's state when it was written (``written_status``,
``written_owner_id``, ``written_team_id``) and its validity window (``valid_until``). At
delivery, a message whose ticket has moved on or whose window has passed is not sent but
marked ``stale`` with the reason (``cxdesk.engine.staleness``). Rows queued before this
revision have NULL in all four: they are sent as before (no snapshot, no window).

No index: the columns are read only for the rows a worker has just claimed, by id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("written_status", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("written_owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("written_team_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("valid_until")
        batch_op.drop_column("written_team_id")
        batch_op.drop_column("written_owner_id")
        batch_op.drop_column("written_status")
