"""pull: ticket.pulled_from and the trigger that logs a pull

A pull is one UPDATE ... RETURNING that sets ``ticket.pulled_from`` (the queue's name); this
trigger, which fires only for an UPDATE that sets that column, writes the pull's two log lines
(``ticket.assigned_from_queue``, and ``ticket.status_changed`` when new -> open) in the same
statement. One statement is one short write transaction: on SQLite the desk-wide write lock is
no longer held across several round trips from Python (benchmarks/pull.py: 8 processes,
~1,100 -> ~6,000 pulls/s, p99 ~130 ms -> single-digit ms).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "kind, actor_id, ticket_id, field_name, from_value, to_value, detail, created_at"
_OWNER_ROW = (
    "'ticket.assigned_from_queue', NEW.owner_id, NEW.id, 'owner', NULL, "
    '(SELECT username FROM "user" WHERE id = NEW.owner_id), NEW.pulled_from, NEW.updated_at'
)
_STATUS_ROW = (
    "'ticket.status_changed', NEW.owner_id, NEW.id, 'status', OLD.status, NEW.status, NULL, "
    "NEW.updated_at"
)

SQLITE_TRIGGER = f"""
CREATE TRIGGER ticket_pulled AFTER UPDATE OF pulled_from ON ticket
BEGIN
    INSERT INTO event ({_COLUMNS}) VALUES ({_OWNER_ROW});
    INSERT INTO event ({_COLUMNS}) SELECT {_STATUS_ROW} WHERE OLD.status IS NOT NEW.status;
END
"""
POSTGRES_FUNCTION = f"""
CREATE FUNCTION ticket_pulled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event ({_COLUMNS}) VALUES ({_OWNER_ROW});
    IF OLD.status IS DISTINCT FROM NEW.status THEN
        INSERT INTO event ({_COLUMNS}) VALUES ({_STATUS_ROW});
    END IF;
    RETURN NULL;
END
$$
"""
POSTGRES_TRIGGER = (
    "CREATE TRIGGER ticket_pulled AFTER UPDATE OF pulled_from ON ticket "
    "FOR EACH ROW EXECUTE FUNCTION ticket_pulled()"
)


def upgrade() -> None:
    op.add_column("ticket", sa.Column("pulled_from", sa.String(length=100), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ticket_pulled ON ticket")
        op.execute("DROP FUNCTION IF EXISTS ticket_pulled()")
    else:
        op.execute("DROP TRIGGER IF EXISTS ticket_pulled")
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("pulled_from")
