"""outbox: claim_token and sending_at, for at most one unknown send per crashed deliverer

``claim_token`` names the claim that holds a row, so a deliverer can renew its lease (a
heartbeat moves ``claimed_until``) and still prove the row is its own when it records a
result. ``sending_at`` is committed before each send: a row that has it but no result is the
one message a dead deliverer may have sent (an SMS is then looked up at Twilio before being
sent again). Both nullable: existing rows need no value.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("claim_token", sa.String(length=32), nullable=True))
    op.add_column("outbox", sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("sending_at")
        batch.drop_column("claim_token")
