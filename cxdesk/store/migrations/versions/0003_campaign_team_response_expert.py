"""campaign team, survey response expert, a ticket's survey answered once

- ``campaign.team_id``: the team a proactive campaign's tickets belong to.
- ``survey_response.expert_id``: the expert a CSAT answer is about (its ticket's owner when the
  survey link was sent), so CSAT is reported per expert even if the ticket changes hands.
- ``ix_survey_response_once`` (survey_id, ticket_id) unique: a ticket's survey is answered
  once, even by two answers arriving at the same instant. Responses without a ticket
  (check-in, NPS) have NULL there and never collide.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_campaign_team_id_team"), "team", ["team_id"], ["id"]
        )

    with op.batch_alter_table("survey_response", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expert_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_survey_response_expert_id_user"), "user", ["expert_id"], ["id"]
        )
    op.create_index(
        op.f("ix_survey_response_expert_id"), "survey_response", ["expert_id"], unique=False
    )
    op.create_index(
        "ix_survey_response_once", "survey_response", ["survey_id", "ticket_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_survey_response_once", table_name="survey_response")
    op.drop_index(op.f("ix_survey_response_expert_id"), table_name="survey_response")
    with op.batch_alter_table("survey_response", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_survey_response_expert_id_user"), type_="foreignkey"
        )
        batch_op.drop_column("expert_id")

    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaign_team_id_team"), type_="foreignkey")
        batch_op.drop_column("team_id")
