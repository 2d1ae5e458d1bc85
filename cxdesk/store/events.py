"""Writing the activity log. Every desk operation records its events here, but a pull, whose
log lines the database writes (the ``ticket_pulled`` trigger, migration 0006).

An event is both the ticket's log line (who, when, what, from -> to) and the workflow
engine's trigger: new events are remembered on the session (``pending_events``) so the engine
can react to them inside the same transaction (``cxdesk.engine.dispatch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Required, TypedDict, TypeVar, Unpack

from sqlalchemy import event, insert
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, SQLModel

from cxdesk.store import together
from cxdesk.store.in_hand import attach_written, new_values, set_new, written
from cxdesk.store.models import Event, User, utcnow
from cxdesk.store.prepared import Prepared

Model = TypeVar("Model", bound=SQLModel)

PENDING_KEY = "cxdesk_pending_events"
RECORDED_KEY = "cxdesk_recorded_events"
"""The ids of the events the session's current transaction wrote: no one else has seen them
(the engine need not look for their earlier workflow runs)."""

KINDS = (
    "survey.response",
    "survey.answered",
    "ticket.created",
    "ticket.assigned_from_queue",  # written by the ticket_pulled trigger (migration 0006)
    "ticket.status_changed",
    "ticket.owner_changed",
    "ticket.updated",
    "ticket.commented",
    "ticket.escalated",
    "ticket.escalation_step",
    "ticket.estimate",
    "ticket.feedback",
    "ticket.pull_undone",  # the puller put it back in its queue within the window (store.unpull)
    "message.queued",
    "message.sent",
    "message.retry",
    "message.failed",
    "message.dead",
    "message.skipped",
    "message.stale",  # not sent: its ticket moved on or its window passed (engine.staleness)
    # Conversations (issue 14): replies out, customer messages in.
    "ticket.replied",  # an expert's reply to the customer was queued (store.replies)
    "ticket.linked",  # opened by a customer writing again after an old ticket closed
    "message.received",  # a customer's email or SMS landed on the ticket (store.inbound)
    "message.auto_reply",  # an out-of-office answer, logged: reopens and opens nothing
    "message.bounced",  # a message the desk sent came back undelivered
    "message.suppressed",  # not queued (RFC 3834, once per period) or an SMS to an opted-out number
    "message.opted_out",  # a number sent STOP: no more SMS to it
    "message.opted_in",  # a number sent START
    "attachment.refused",  # an inbound file over the desk's limits, listed not dropped
    # The waiting room (issue 15).
    "ticket.recalled",  # a no-show: back at the head of its queue, the customer called again
    "ticket.near_front",  # the ticket reached the desk's "you're next" position (once)
    "user.presence_changed",  # an expert became available, away or on a break (store.presence)
    # Service levels (issue 16): raised once per ticket, target and clock start (engine.sla_watch).
    "sla.warning",  # field: the target; to: its due time; e.g. "first response due ... UTC"
    "sla.breached",  # the target passed its due time while running
    "workflow.scheduled",  # a scheduled workflow ran (engine.occurrences): no ticket
)
"""Every kind of event the desk writes. The log has no index on its kind (migration 0007):
what can be filtered on is this list, not a scan of the log."""

# Core, not ORM: built once, no ORM bulk-persistence path on every write.
_EVENTS = Event.__table__  # type: ignore[attr-defined]
_INSERT_EVENT = Prepared(
    insert(_EVENTS).returning(_EVENTS.c.id),
    keys=["kind", "actor_id", "ticket_id", "response_id", "field_name", "from_value", "to_value",
          "detail", "created_at", "dispatched_at"],
)  # fmt: skip


class EventFields(TypedDict, total=False):
    """What a log line says: ``record_event``'s keywords."""

    kind: Required[str]
    actor: Required[User | None]
    ticket_id: int | None
    response_id: int | None
    field_name: str | None
    from_value: object
    to_value: object
    detail: str | None
    triggers_workflows: bool


def event_values(**fields: Unpack[EventFields]) -> dict[str, Any]:
    """The columns of the log line ``record_event`` writes (its id aside), stamped now."""
    kind, actor = fields["kind"], fields["actor"]
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}: add it to cxdesk.store.events.KINDS")
    now = utcnow()
    from_value, to_value = fields.get("from_value"), fields.get("to_value")
    return {
        "kind": kind,
        "actor_id": actor.id if actor else None,
        "ticket_id": fields.get("ticket_id"),
        "response_id": fields.get("response_id"),
        "field_name": fields.get("field_name"),
        "from_value": None if from_value is None else str(from_value),
        "to_value": None if to_value is None else str(to_value),
        "detail": fields.get("detail"),
        "created_at": now,
        "dispatched_at": None if fields.get("triggers_workflows", True) else now,
    }


def record_event(session: Session, **fields: Unpack[EventFields]) -> int:
    """Write one log line and return its id; ``triggers_workflows=False`` for bookkeeping no
    workflow handles (delivery attempts), which is then marked dispatched at once.

    A plain INSERT ... RETURNING rather than an ORM object: it runs inside every write, so
    it is kept cheap. (A pull's lines are written by the database: the ``ticket_pulled``
    trigger, migration 0006.)
    """
    row = event_values(**fields)
    event_id: int = _INSERT_EVENT.scalar(session, row)
    if fields.get("triggers_workflows", True):
        recorded(session, event_id, row)
    return event_id


def recorded(session: Session, event_id: int, row: Mapping[str, Any]) -> None:
    """The log line ``row`` (``event_values``), just written with ``event_id`` (by
    ``record_event`` or with the row it tells of: ``store.together``), handed to the workflow
    engine: in hand (the engine reads it back) and pending."""
    attach_written(session, Event, {"id": event_id, **row})
    session.info.setdefault(PENDING_KEY, []).append(event_id)
    session.info.setdefault(RECORDED_KEY, set()).add(event_id)


def insert_with_line(
    session: Session, row: Model, line: Mapping[str, Any], *, detail: tuple[str, str]
) -> Model:
    """PostgreSQL: the new object ``row`` written as ``in_hand.insert_row`` writes it, and
    the log line ``line`` (``event_values``, for no workflow) whose detail names the row's id
    between ``detail``'s two parts, in one statement (``store.together``): one round trip
    where there were two. The row's id set, it is kept in hand."""
    table: Any = row.__table__  # type: ignore[attr-defined]
    names = [column.name for column in table.columns if column.name != "id"]
    row_id, _line_id = together.row_with_line(
        session, table=table, row=new_values(row, names), events=_EVENTS,
        line={name: value for name, value in line.items() if name != "detail"},
        around_id={"detail": detail},
    )  # fmt: skip
    set_new(row, id=row_id)
    return written(session, row)


def take_pending_events(session: Session) -> list[int]:
    """The ids of events recorded on this session not yet handed to the engine."""
    pending: list[int] = session.info.pop(PENDING_KEY, [])
    return pending


@event.listens_for(OrmSession, "after_commit")
@event.listens_for(OrmSession, "after_rollback")
def _forget_recorded(session: OrmSession) -> None:
    """Committed (others may see them now) or rolled back (gone)."""
    session.info.pop(RECORDED_KEY, None)
