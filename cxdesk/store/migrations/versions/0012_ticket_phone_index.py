"""ticket phone index: a customer's tickets by phone, newest first (issue 14, inbound SMS)

A text message from a customer goes to their latest open ticket with that phone
(``store.sms_inbound``). Without an index that read every ticket (or every open one through
the status index); with it, the number's own tickets. An index only: on SQLite no table copy,
so the pull trigger (migration 0006) is untouched.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 03:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ticket_customer_phone", "ticket", ["customer_phone", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_customer_phone", table_name="ticket")
