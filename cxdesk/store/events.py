"""Writing the activity log. Every desk operation records its events here.

An event is both the ticket's log line (who, when, what, from -> to) and the workflow
engine's trigger: new events are remembered on the session (``pending_events``) so the engine
can react to them inside the same transaction (``cxdesk.engine.dispatch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session

from cxdesk.store.models import Event, User, utcnow

PENDING_KEY = "cxdesk_pending_events"

# Core, not ORM: built once, no ORM bulk-persistence path on every write.
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)


@dataclass(frozen=True)
class Change:
    """One log line of ``record_events``: what happened to the ticket, from -> to."""

    kind: str
    field_name: str | None = None
    from_value: object = None
    to_value: object = None
    detail: str | None = None


def record_event(
    session: Session,
    *,
    kind: str,
    actor: User | None,
    ticket_id: int | None = None,
    response_id: int | None = None,
    field_name: str | None = None,
    from_value: object = None,
    to_value: object = None,
    detail: str | None = None,
    triggers_workflows: bool = True,
) -> int:
    """Write one log line and return its id; ``triggers_workflows=False`` for bookkeeping no
    workflow handles (delivery attempts), which is then marked dispatched at once.

    A plain INSERT ... RETURNING rather than an ORM object: it runs inside every write
    (a pull holds SQLite's write lock while it does), so it is kept cheap.
    """
    now = utcnow()
    change = Change(kind, field_name, from_value, to_value, detail)
    row = _row(change, actor=actor, ticket_id=ticket_id, response_id=response_id, now=now)
    row["dispatched_at"] = None if triggers_workflows else now
    event_id: int = session.connection().execute(_INSERT_EVENT, row).scalar_one()
    if triggers_workflows:
        session.info.setdefault(PENDING_KEY, []).append(event_id)
    return event_id


def record_events(
    session: Session, *, actor: User | None, ticket_id: int, changes: Sequence[Change]
) -> list[int]:
    """Write several log lines of one ticket in one statement (one round trip to the
    server): for a pull, which holds SQLite's write lock and an expert's keystroke."""
    now = utcnow()
    rows = [_row(change, actor=actor, ticket_id=ticket_id, now=now) for change in changes]
    ids = list(session.connection().execute(_INSERT_EVENTS, rows).scalars())
    session.info.setdefault(PENDING_KEY, []).extend(ids)
    return ids


def _row(
    change: Change,
    *,
    actor: User | None,
    ticket_id: int | None,
    now: datetime,
    response_id: int | None = None,
) -> dict[str, object]:
    """The event table's row for one change (not yet dispatched to workflows)."""
    return {
        "kind": change.kind,
        "actor_id": actor.id if actor else None,
        "ticket_id": ticket_id,
        "response_id": response_id,
        "field_name": change.field_name,
        "from_value": None if change.from_value is None else str(change.from_value),
        "to_value": None if change.to_value is None else str(change.to_value),
        "detail": change.detail,
        "created_at": now,
        "dispatched_at": None,
    }


def take_pending_events(session: Session) -> list[int]:
    """The ids of events recorded on this session not yet handed to the engine."""
    pending: list[int] = session.info.pop(PENDING_KEY, [])
    return pending
