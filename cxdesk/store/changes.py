"""A cheap "has anything changed?" token, so screens notice other terminals' changes.

Every change to a ticket writes an ``Event`` row in the same transaction (see
``store/events.py``), so the event table's highest id moves whenever the desk changes. On
PostgreSQL ids come from a sequence and transactions may commit out of order: a row with a
lower id can appear after a higher one was seen. The token therefore also counts the rows in
a window below the last highest id; a late commit inside that window changes the count.
Both parts are answered from the primary-key index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from cxdesk.store.models import Event

LATE_COMMIT_WINDOW = 1000
"""How far below the highest event id a late commit is still noticed."""


@dataclass(frozen=True)
class ChangeToken:
    """Compare two tokens read with the same ``since``: different means something changed."""

    highest: int
    since: int
    recent: int
    """Events with an id above ``since``."""

    @property
    def next_since(self) -> int:
        """The ``since`` to read the next token with."""
        return max(0, self.highest - LATE_COMMIT_WINDOW)

    def differs_from(self, earlier: ChangeToken | None) -> bool:
        """Whether the desk changed between ``earlier`` (None: never read) and this token."""
        if earlier is None or self.highest != earlier.highest or self.since != earlier.since:
            return True  # a new window is compared once more, never assumed unchanged
        return self.recent != earlier.recent


def change_token(session: Session, since: int = 0) -> ChangeToken:
    """The event table's highest id and how many events lie above ``since``."""
    highest, recent = session.execute(
        select(func.coalesce(func.max(col(Event.id)), 0), func.count()).where(col(Event.id) > since)
    ).one()
    return ChangeToken(highest=max(int(highest), since), since=since, recent=int(recent))
