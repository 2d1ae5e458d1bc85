"""history indexes: a ticket's owner and requester with its creation time

"My tickets" (``store.pages.history_page``) lists the tickets an actor submitted or owns,
newest (or oldest) first, a page at a time. With ``ix_ticket_owner_id`` and
``ix_ticket_requester_id`` (the id alone) every one of the actor's tickets was read and sorted
for each page: on 100,000 tickets an expert owns ~10,000 (SQLite ~250 ms a page against ~2 ms
on 1,000). ``(owner_id, created_at, id)`` and ``(requester_id, created_at, id)`` hold them in
the page's order, so each page reads at most offset + limit entries of each; they replace the
single-column ones (still served by their leading column), so a check-in or a pull writes no
more index entries than before.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 15:10:00
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ticket_owner_created", "ticket", ["owner_id", "created_at", "id"])
    op.create_index("ix_ticket_requester_created", "ticket", ["requester_id", "created_at", "id"])
    op.drop_index("ix_ticket_owner_id", table_name="ticket")
    op.drop_index("ix_ticket_requester_id", table_name="ticket")


def downgrade() -> None:
    op.create_index("ix_ticket_requester_id", "ticket", ["requester_id"])
    op.create_index("ix_ticket_owner_id", "ticket", ["owner_id"])
    op.drop_index("ix_ticket_requester_created", table_name="ticket")
    op.drop_index("ix_ticket_owner_created", table_name="ticket")
