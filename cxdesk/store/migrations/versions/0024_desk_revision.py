"""desk revision: a counter every change to the desk's definitions moves (issue 18)

``desk_revision`` holds one row: ``desk``, a random name given to this database when the
table is made, and ``revision``, which a trigger on each definition table (settings, teams,
statuses, queues, surveys, workflows, ticket templates, SLA policies and calendars) moves on
every insert, update or delete, whoever writes it (the TUI, the CLI, another process, plain
SQL). ``store.definitions`` caches the definitions under (desk, revision): one read of this
row tells any process whether its copy is still the desk's.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFINITION_TABLES = (
    "desk_setting", "team", "status", "queue", "survey", "workflow", "ticket_template",
    "sla_policy", "sla_calendar",
)  # fmt: skip
_BUMP = "UPDATE desk_revision SET revision = revision + 1"
# The function runs with the search_path of this migration (the desk's schema), not the
# writer's: another program writing with its own search_path still moves the revision.
_POSTGRES_FUNCTION = f"""
CREATE FUNCTION desk_revision_bump() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    {_BUMP};
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "desk_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("desk", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    random_name = "md5(random()::text)" if postgres else "lower(hex(randomblob(16)))"
    op.execute(f"INSERT INTO desk_revision (id, desk, revision) VALUES (1, {random_name}, 0)")
    if postgres:
        op.execute(_POSTGRES_FUNCTION)
        for table in DEFINITION_TABLES:
            op.execute(
                f"CREATE TRIGGER desk_revision_{table} AFTER INSERT OR UPDATE OR DELETE "
                f'OR TRUNCATE ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION desk_revision_bump()'
            )
        return
    for table in DEFINITION_TABLES:
        for change in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER desk_revision_{table}_{change.lower()} AFTER {change} "
                f'ON "{table}" BEGIN {_BUMP}; END'
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in DEFINITION_TABLES:
        if postgres:
            op.execute(f'DROP TRIGGER IF EXISTS desk_revision_{table} ON "{table}"')
        else:
            for change in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS desk_revision_{table}_{change}")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS desk_revision_bump()")
    op.drop_table("desk_revision")
