"""SLA alerts as rows: which running targets passed their warning or due time without an
``sla_alert`` yet (``due_alerts``), and taking one (``claim_alert``: an INSERT that the unique
key (ticket, target, kind, since) turns into nothing when another worker took it first).

The worker raises the events (``cxdesk.engine.sla_watch``); the desk's digest reads the rows
(ticket, target, kind, due time, event and ``created_at``, the time it was raised).

Only unresolved, unpaused tickets with a policy are looked at, through the ticket's status
(``ix_ticket_status``: the open statuses' tickets, not the desk's history), and only targets
with no alert of that kind for their current clock start (``since``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists
from sqlmodel import Session, col, select

from cxdesk.store.models import SlaAlert, Status, StatusCategory, Ticket
from cxdesk.store.sla import SLA_TARGETS
from cxdesk.store.upsert import dialect_insert

WARNING = "warning"
BREACHED = "breached"

TARGET_COLUMNS: dict[str, tuple[Any, Any, Any, Any]] = {
    "first_response": (
        col(Ticket.first_response_due_at),
        col(Ticket.first_response_warn_at),
        col(Ticket.first_responded_at),
        col(Ticket.created_at),
    ),
    "next_response": (
        col(Ticket.next_response_due_at),
        col(Ticket.next_response_warn_at),
        col(Ticket.next_responded_at),
        col(Ticket.next_response_since),
    ),
    "resolution": (
        col(Ticket.resolution_due_at),
        col(Ticket.resolution_warn_at),
        col(Ticket.resolved_at),
        col(Ticket.created_at),
    ),
}
"""Each target's (due, warn, done, since) columns: ``store.sla``'s reading, for SQL."""


@dataclass(frozen=True)
class DueAlert:
    """A target that passed its warning (or due) time, with no alert of that kind yet."""

    ticket_id: int
    target: str
    kind: str
    since: datetime
    due_at: datetime


def due_alerts(session: Session, *, now: datetime, limit: int) -> list[DueAlert]:
    """Up to ``limit`` alerts to raise at ``now``, breaches first, the earliest due first.

    A warning is due while the target runs between its warning and due times; once the due
    time has passed only the breach is (a worker that was down does not send both). Done
    targets raise nothing, even when done late (the report counts those as breached).
    """
    # The names, not a subquery: given the list, PostgreSQL's planner reads the open tickets
    # through ix_ticket_status (a subquery made it scan the whole table: 300 ms at 100k).
    statuses = session.exec(select(Status.name).where(Status.category == StatusCategory.open))
    open_statuses = list(statuses.all())
    found: list[DueAlert] = []
    for kind in (BREACHED, WARNING):
        for target in SLA_TARGETS:
            if len(found) >= limit:
                return found
            due, warn, done, since = TARGET_COLUMNS[target]
            passed = due <= now if kind == BREACHED else and_(warn <= now, due > now)
            raised = exists().where(
                col(SlaAlert.ticket_id) == col(Ticket.id),
                col(SlaAlert.target) == target,
                col(SlaAlert.kind) == kind,
                col(SlaAlert.since) == since,
            )
            statement = (
                select(col(Ticket.id), since, due)
                .where(
                    col(Ticket.status).in_(open_statuses),
                    col(Ticket.sla_policy_id).is_not(None),
                    col(Ticket.sla_paused_at).is_(None),
                    done.is_(None),
                    since.is_not(None),
                    passed,
                    ~raised,
                )
                .order_by(due, col(Ticket.id))
                .limit(limit - len(found))
            )
            found += [
                DueAlert(ticket_id, target, kind, started, due_at)
                for ticket_id, started, due_at in session.execute(statement)
            ]
    return found


def claim_alert(session: Session, alert: DueAlert, *, now: datetime) -> int | None:
    """Insert the alert's row; its id, or None when another worker's row holds its key (then
    it is raised already, or being raised: nothing more to do)."""
    table = SlaAlert.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session.get_bind().dialect.name)
    statement = (
        insert(table)
        .values(
            ticket_id=alert.ticket_id,
            target=alert.target,
            kind=alert.kind,
            since=alert.since,
            due_at=alert.due_at,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["ticket_id", "target", "kind", "since"])
        .returning(table.c.id)
    )
    alert_id: int | None = session.connection().execute(statement).scalar()
    return alert_id


def note_event(session: Session, alert_id: int, event_id: int) -> None:
    """Link the alert row to the event that announced it."""
    table = SlaAlert.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        table.update().where(table.c.id == alert_id).values(event_id=event_id)
    )
