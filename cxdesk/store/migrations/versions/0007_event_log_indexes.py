"""event log: no index on kind or time; every write of the log paid for them

Every desk operation writes the log, a pull two lines (``ticket.assigned_from_queue`` and
``ticket.status_changed``), and each index of ``event`` is one more B-tree page written per
line. ``ix_event_kind`` and ``ix_event_created_at`` served only reads that can do without:

- the stream's kind filter walks the log back from the newest event until it has a page (the
  common kinds are found at once; a rare kind reads further back), and the list of kinds is
  ``cxdesk.store.events.KINDS`` instead of a DISTINCT over the whole log;
- Insights' wait to pull reads each ticket's first pull through ``ix_event_ticket``.

Measured (benchmarks/pull.py, SQLite, 8 processes): ~15.5 -> ~11.9 WAL pages written a pull
(the bare claim: ~9.7); claims per second against the bare claim 0.45-0.55 -> 0.59-0.69 over
seven runs. The rarest kind on 500,000 events (50 of them): 0.7 -> 31 ms on SQLite, 43 -> 46
ms on PostgreSQL; Insights' waits of the last week on 100,000 tickets: unchanged (58 ms).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:00:00
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_event_kind", table_name="event")
    op.drop_index("ix_event_created_at", table_name="event")


def downgrade() -> None:
    op.create_index("ix_event_created_at", "event", ["created_at"])
    op.create_index("ix_event_kind", "event", ["kind"])
