"""pull log after the claim (PostgreSQL): the claim no longer fires the trigger

A pull on PostgreSQL writes its two log lines after its claim commits, in a statement of its
own (``store.pull_log``), instead of the ``ticket_pulled`` trigger inside the claim: the
claim's row lock is released sooner and the trigger (plpgsql and its INSERTs) no longer runs
under it (issue 18 item 4). The claim records what the log needs on the ticket:

- ``pull_pending``: the status the ticket had before the pull, set by the claim and cleared
  by the statement that writes the log lines (the same statement: exactly once); not NULL
  means the pull's lines are still to write (a crash in between: the worker's repair pass,
  ``store.pull_log.log_pending_pulls``, writes them);
- ``pulled_by``, ``pulled_at``: the expert and the time of the pull (the ticket's owner and
  ``updated_at`` may change before a repair).

The trigger stays for every other UPDATE that sets ``pulled_from`` (an auto-assignment): on
PostgreSQL it gets a ``WHEN`` condition the server checks without running the function: not
the claim of a pull (``pull_pending`` set, ``pulled_at`` its ``updated_at``). SQLite keeps its
trigger as it was (its pull is one statement under the write lock; a second one would be
slower). Plain ADD COLUMN (no table copy: the trigger stays),
no index (every index on ``ticket`` is written by every pull).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGER = (
    "CREATE TRIGGER ticket_pulled AFTER UPDATE OF pulled_from ON ticket "
    "FOR EACH ROW {when}EXECUTE FUNCTION ticket_pulled()"
)
_NOT_A_PULL = "WHEN (NEW.pull_pending IS NULL OR NEW.pulled_at IS DISTINCT FROM NEW.updated_at) "
_COLUMNS = (("pull_pending", sa.String(length=32)), ("pulled_by", sa.Integer()),
            ("pulled_at", sa.DateTime(timezone=True)))  # fmt: skip
# What the log statement writes for a pending pull (store.pull_log, kept in step with it).
_LOG_PENDING = """
WITH done AS (
    UPDATE ticket AS t SET pull_pending = NULL
    FROM (SELECT id, pull_pending FROM ticket WHERE pull_pending IS NOT NULL FOR UPDATE) AS p
    WHERE t.id = p.id
    RETURNING t.id, t.pulled_by, t.pulled_at, t.pulled_from, p.pull_pending AS before
)
INSERT INTO event (kind, actor_id, ticket_id, field_name, from_value, to_value, detail,
                   created_at)
SELECT line.kind, done.pulled_by, done.id, line.field, line.from_value, line.to_value,
       line.detail, done.pulled_at
FROM done CROSS JOIN LATERAL (VALUES
    (1, 'ticket.assigned_from_queue', 'owner', NULL,
     (SELECT username FROM "user" WHERE id = done.pulled_by), done.pulled_from),
    (2, 'ticket.status_changed', 'status', done.before, 'open', NULL)
) AS line (n, kind, field, from_value, to_value, detail)
WHERE line.n = 1 OR done.before = 'new'
ORDER BY done.id, line.n
"""


def upgrade() -> None:
    for name, kind in _COLUMNS:
        op.add_column("ticket", sa.Column(name, kind, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ticket_pulled ON ticket")
        op.execute(_TRIGGER.format(when=_NOT_A_PULL))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_LOG_PENDING)  # a pull whose lines are not written yet: written now
        op.execute("DROP TRIGGER ticket_pulled ON ticket")
        op.execute(_TRIGGER.format(when=""))
    # Plain DROP COLUMN (SQLite 3.35+): a batch would copy the table and lose its trigger.
    for name, _kind in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE ticket DROP COLUMN {name}")
