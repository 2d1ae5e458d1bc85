"""customer language: a check-in's language, a survey's texts per language (issue 17)

``survey_response.language``: the language the customer chose at check-in (a code of
``cxdesk.i18n.LANGUAGES`` or NULL: the desk's); the tickets the response creates carry it as
``ticket.customer_language``. ``survey.languages``: the survey's title per language
(``{"it": {"title": ...}}``; its questions carry their own). Plain ADD COLUMN, nothing to
backfill.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 12:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("survey_response", sa.Column("language", sa.String(length=8), nullable=True))
    op.add_column("survey", sa.Column("languages", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute('ALTER TABLE "survey" DROP COLUMN languages')
    op.execute('ALTER TABLE "survey_response" DROP COLUMN language')
