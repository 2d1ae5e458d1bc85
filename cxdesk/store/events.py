"""Writing the activity log. Every desk operation records its events here.

An event is both the ticket's log line (who, when, what, from -> to) and the workflow
engine's trigger: new events are remembered on the session (``pending_events``) so the engine
can react to them inside the same transaction (``cxdesk.engine.dispatch``).
"""

from __future__ import annotations

from sqlmodel import Session

from cxdesk.store.models import Event, User

PENDING_KEY = "cxdesk_pending_events"


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
) -> Event:
    """Write one log line; ``triggers_workflows=False`` for bookkeeping no workflow handles
    (delivery attempts), which is then marked dispatched at once."""
    event = Event(
        kind=kind,
        actor_id=actor.id if actor else None,
        ticket_id=ticket_id,
        response_id=response_id,
        field_name=field_name,
        from_value=None if from_value is None else str(from_value),
        to_value=None if to_value is None else str(to_value),
        detail=detail,
    )
    if not triggers_workflows:
        event.dispatched_at = event.created_at
    session.add(event)
    session.flush()
    if triggers_workflows:
        session.info.setdefault(PENDING_KEY, []).append(event.id)
    return event


def take_pending_events(session: Session) -> list[int]:
    """The ids of events recorded on this session not yet handed to the engine."""
    pending: list[int] = session.info.pop(PENDING_KEY, [])
    return pending
