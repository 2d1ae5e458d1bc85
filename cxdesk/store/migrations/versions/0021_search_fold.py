"""ticket search_fold: search folds case, accents and width (issue 17)

``ticket.search_fold`` holds the ticket's searched fields (key, title, customer name, email
and comment) in folded form (``cxdesk.search_fold``), so the list's search compares one folded
column with the folded query on both databases, with no SQL function (SQLite's ``lower`` folds
ASCII only, and PostgreSQL's ``unaccent`` is an extension a desk's server may not have). A plain
ADD COLUMN on both databases (a batch copy of ``ticket`` would drop the pull trigger of 0006),
no index (a LIKE '%...%' cannot use one), backfilled here in pages of 1,000 tickets.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cxdesk.search_fold import fold_fields

# revision identifiers, used by Alembic.
revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIELDS = ("key", "title", "customer_name", "customer_email", "customer_comment")
_PAGE = 1000


def upgrade() -> None:
    op.add_column(
        "ticket",
        sa.Column("search_fold", sa.String(), nullable=False, server_default=sa.text("''")),
    )
    ticket = sa.table("ticket", sa.column("id"), sa.column("search_fold"),
                      *(sa.column(name) for name in _FIELDS))  # fmt: skip
    connection = op.get_bind()
    after = 0
    while rows := connection.execute(
        sa.select(ticket.c.id, *(ticket.c[name] for name in _FIELDS))
        .where(ticket.c.id > after)
        .order_by(ticket.c.id)
        .limit(_PAGE)
    ).all():
        connection.execute(
            ticket.update().where(ticket.c.id == sa.bindparam("ticket_id")),
            [{"ticket_id": row[0], "search_fold": fold_fields(*row[1:])} for row in rows],
        )
        after = rows[-1][0]


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch would copy the table and lose its trigger.
    op.execute("ALTER TABLE ticket DROP COLUMN search_fold")
