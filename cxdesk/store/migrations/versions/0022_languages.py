"""languages: a user's, a customer's on the ticket, a contact's (issue 17)

``user.language`` (the TUI's and CLI's language for that user), ``ticket.customer_language``
(the language the customer's SMS, email and survey page use) and ``contact.language``: each a
code of ``cxdesk.i18n.LANGUAGES`` or NULL (the desk's ``language`` setting). Plain ADD COLUMN
(a batch copy of ``ticket`` would drop the pull trigger of 0006); nothing to backfill.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("user", "language"), ("ticket", "customer_language"), ("contact", "language"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(length=8), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch would copy ``ticket`` and lose its trigger.
    for table, column in reversed(_COLUMNS):
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN {column}')
