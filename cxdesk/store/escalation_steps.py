"""An escalated ticket's progress: the five steps of its timeline and the estimated resolution.

The steps, in order: submitted (the ticket's creation), under evaluation (it was escalated),
engineering in progress and verify resolution (set by hand, ``set_escalation_step``), resolved
(the ticket was resolved). Only the two middle steps are set here; the others follow from what
happens to the ticket. A step may go back (verification failed: engineering in progress
again); a later escalation starts the middle steps afresh.

Each step set is a ``ticket.escalation_step`` event (from -> to) and each estimate change a
``ticket.estimate`` event; the estimate itself is the ticket's ``estimated_resolution``.
Escalation *rules* (escalate after N minutes) live in ``cxdesk.engine.escalation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from cxdesk.errors import Conflict, PermissionDenied, ValidationFailed, must_be_one_of
from cxdesk.i18n import N_, _
from cxdesk.store.events import record_event
from cxdesk.store.models import Event, StatusCategory, Ticket, User, as_utc
from cxdesk.store.tickets import (
    can_work_on,
    get_ticket,
    require_staff,
    status_category,
    write_comment,
)

# Stored as they are (the step events' values, --json); a person reads ``_(step)``.
SUBMITTED = N_("submitted")
UNDER_EVALUATION = N_("under evaluation")
ENGINEERING = N_("engineering in progress")
VERIFY = N_("verify resolution")
RESOLVED = N_("resolved")
STEPS = (SUBMITTED, UNDER_EVALUATION, ENGINEERING, VERIFY, RESOLVED)
SETTABLE_STEPS = (ENGINEERING, VERIFY)
"""The steps set by hand; the others follow from creating, escalating and resolving."""
STEP_EVENT = "ticket.escalation_step"
ESTIMATE_EVENT = "ticket.estimate"


@dataclass(frozen=True)
class Step:
    """One step of the timeline: when it was reached (None: not yet) and whether it is the
    step the ticket is at now."""

    name: str
    at: datetime | None
    current: bool


@dataclass(frozen=True)
class EscalationTimeline:
    """The five steps in order and the optional estimated resolution date."""

    steps: list[Step]
    estimate: date | None

    @property
    def current(self) -> str:
        return next(step.name for step in self.steps if step.current)

    def to_dict(self) -> dict[str, object]:
        """Plain values for JSON: ISO times (UTC), the estimate as YYYY-MM-DD."""
        return {
            "steps": [
                {
                    "name": step.name,
                    "at": step.at.isoformat() if step.at else None,
                    "current": step.current,
                }
                for step in self.steps
            ],
            "current": self.current,
            "estimate": self.estimate.isoformat() if self.estimate else None,
        }


def parse_estimate(text: str) -> date | None:
    """A typed estimate (YYYY-MM-DD); empty text is no estimate."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            {"estimate": _("{text!r} is not a date (YYYY-MM-DD)").format(text=text)}
        ) from None


def _escalation_events(session: Session, ticket: Ticket) -> tuple[datetime | None, list[Event]]:
    """When the latest escalation happened (the ticket's ``escalated_at``, else its event) and
    the step events set since then, oldest first."""
    events = session.exec(
        select(Event)
        .where(
            Event.ticket_id == ticket.id,
            col(Event.kind).in_(("ticket.escalated", STEP_EVENT)),
        )
        .order_by(col(Event.id))
    ).all()
    escalated_at = ticket.escalated_at
    steps: list[Event] = []
    for event in events:
        if event.kind == "ticket.escalated":
            escalated_at, steps = ticket.escalated_at or event.created_at, []  # afresh
        else:
            steps.append(event)
    return (as_utc(escalated_at) if escalated_at else None), steps


def escalation_timeline(session: Session, ticket: Ticket) -> EscalationTimeline | None:
    """The ticket's timeline, or None when it was never escalated."""
    escalated_at, step_events = _escalation_events(session, ticket)
    if escalated_at is None:
        return None
    reached: dict[str, datetime] = {
        SUBMITTED: as_utc(ticket.created_at),
        UNDER_EVALUATION: escalated_at,
    }
    current = UNDER_EVALUATION
    for event in step_events:
        if event.to_value in SETTABLE_STEPS:
            current = event.to_value
            reached[current] = as_utc(event.created_at)
    # A middle step after the latest one set was left behind (the step went back).
    for name in SETTABLE_STEPS:
        if STEPS.index(name) > STEPS.index(current):
            reached.pop(name, None)
    if ticket.resolved_at is not None and status_category(session, ticket.status) == (
        StatusCategory.resolved
    ):
        current = RESOLVED
        reached[RESOLVED] = as_utc(ticket.resolved_at)
    steps = [Step(name, reached.get(name), name == current) for name in STEPS]
    return EscalationTimeline(steps=steps, estimate=ticket.estimated_resolution)


def set_escalation_step(
    session: Session,
    *,
    actor: User,
    key: str,
    step: str | None,
    estimate: date | None,
    comment: str,
) -> Ticket:
    """Move an escalated ticket to ``step`` and/or set its estimated resolution date.

    ``step`` None keeps the step, ``estimate`` None keeps the estimate; at least one must
    change. Like every update it needs a comment, and the same people may do it as may
    update the ticket. Refused unless the ticket's status is escalated.
    """
    require_staff(actor, N_("edit tickets"))
    errors: dict[str, str] = {}
    if step is not None and step not in SETTABLE_STEPS:
        errors["step"] = must_be_one_of(SETTABLE_STEPS)
    if not comment.strip():
        errors["comment"] = _("is required for every update")
    if step is None and estimate is None:
        errors["step"] = _("give a step or an estimate")
    if errors:
        raise ValidationFailed(errors)
    ticket = get_ticket(session, key, lock=True)
    if not can_work_on(session, actor, ticket):
        raise PermissionDenied(_("You are not on the team of {key}").format(key=ticket.key))
    if ticket.status != "escalated":
        raise Conflict(
            _("{key} is not escalated (its status is {status})").format(
                key=ticket.key, status=ticket.status
            )
        )
    timeline = escalation_timeline(session, ticket)
    assert timeline is not None  # the status is escalated
    if estimate is not None and ticket.escalated_at and estimate < ticket.escalated_at.date():
        raise ValidationFailed(
            {"estimate": _("{date} is before the escalation").format(date=estimate.isoformat())}
        )
    new_step = step if step is not None and step != timeline.current else None
    new_estimate = estimate if estimate != ticket.estimated_resolution else None
    if new_step is None and new_estimate is None:
        raise Conflict(
            _("{key} is already at {current} with that estimate").format(
                key=ticket.key, current=timeline.current
            )
        )
    if new_step is not None:
        record_event(session, kind=STEP_EVENT, actor=actor, ticket_id=ticket.id,
                     field_name="escalation step", from_value=timeline.current,
                     to_value=new_step)  # fmt: skip
    if new_estimate is not None:
        old = ticket.estimated_resolution
        ticket.estimated_resolution = new_estimate
        session.add(ticket)
        session.flush()
        record_event(session, kind=ESTIMATE_EVENT, actor=actor, ticket_id=ticket.id,
                     field_name="estimate", from_value=old.isoformat() if old else None,
                     to_value=new_estimate.isoformat())  # fmt: skip
    write_comment(session, actor, ticket, comment, ())
    return ticket
