"""customer history index: a customer's other tickets by email (any case)

The ticket screen and ``cxdesk ticket show`` list the customer's other tickets
(``store.conversation.customer_history``), read again on every reload of the screen. Without
an index each read walked the whole desk: measured on 100,000 tickets (benchmarks/views.py's
desk), a customer with no other ticket took 38 ms on SQLite and 24 ms on PostgreSQL (a
backward scan of ``ix_ticket_created``); with these, 0.2 ms and 0.08 ms (an index search per
term, SQLite's MULTI-INDEX OR, PostgreSQL's BitmapOr).
``ix_ticket_customer_email`` is on ``lower(customer_email)``: the same address in any case.
By phone, ``ix_ticket_customer_phone`` (migration 0012, for customers' texts) serves it.

SQLite cannot reflect an expression index: a later batch (table copy) of ``ticket`` on SQLite
loses ``ix_ticket_customer_email`` and must create it again (as 0011 does the pull trigger).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ticket_customer_email", "ticket", [sa.text("lower(customer_email)")])


def downgrade() -> None:
    op.drop_index("ix_ticket_customer_email", table_name="ticket")
