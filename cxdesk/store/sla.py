"""Service levels: what a ticket's SLA looks like now, from its own columns.

A policy (``SlaPolicy``) gives a ticket up to three targets, each a due time in desk hours:
the first response (the first pull or the first reply), the next response (after each customer
message) and the resolution. The due and warning times are written on the ticket when a clock
starts and moved out when a paused ticket resumes, so reading the state of a ticket needs no
calendar and no query: ``sla_view(ticket, now)``, for the screens, ``ticket show --json``,
the exports and the worker that raises ``sla.warning`` and ``sla.breached``.

The clocks, written by the operations where each moment happens (policies and calendars:
``store.sla_policies``; desk-hours arithmetic: ``engine.sla_clock``):

- ``start_clocks``: at creation, the first matching policy's first-response and resolution due
  and warning times, counted from the ticket's creation;
- ``reapply_policy``: after a team or priority change, the policy that matches now, its due
  times still counted from the creation (and from the running next-response clock's start);
  desk time the ticket already spent paused keeps counting in its favour;
- the first pull (``store.pull.claimed``: in its one statement) or the first reply
  (``note_response``) is the first response; a reply also answers a running next-response
  clock, which a customer message starts (``start_next_response``) if none is running;
- ``status_changed``: entering a ``paused`` status stops the clocks (``sla_paused_at``);
  leaving it moves every running due and warning time out by the desk minutes it was paused.
  A reopened ticket (resolved -> not resolved) is treated the same way: its clocks stood still
  while it was resolved and resume with the time they had left. Resolving sets nothing
  (``resolved_at`` is the resolution's done time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, or_, select

from cxdesk.engine.sla_clock import DeskHours, add_desk_minutes, desk_minutes_between
from cxdesk.i18n import N_
from cxdesk.store.definitions import SlaPolicyDefinition, desk_definitions
from cxdesk.store.in_hand import set_new
from cxdesk.store.models import SlaCalendar, SlaPolicy, StatusCategory, Ticket, as_utc

SLA_TARGETS = ("first_response", "next_response", "resolution")
TARGET_WORDS = {
    "first_response": N_("first response"),
    "next_response": N_("next response"),
    "resolution": N_("resolution"),
}
"""A target's name in English (exports, logs); a person reads ``_(TARGET_WORDS[target])``."""


class SlaState(StrEnum):
    on_track = "on_track"
    warning = "warning"
    breached = "breached"
    met = "met"
    paused = "paused"


STATE_WORDS = {
    SlaState.on_track: N_("on track"),
    SlaState.warning: N_("warning"),
    SlaState.breached: N_("breached"),
    SlaState.met: N_("met"),
    SlaState.paused: N_("paused"),
}
"""A state in English (exports, logs); a person reads ``_(STATE_WORDS[state])``."""
STATE_RANK = {
    SlaState.breached: 0,
    SlaState.warning: 1,
    SlaState.paused: 2,
    SlaState.on_track: 3,
    SlaState.met: 4,
}
"""Worst first: a ticket's state is the worst of its targets' (a target met late is breached)."""


@dataclass(frozen=True)
class TargetState:
    target: str
    state: SlaState
    due_at: datetime
    warn_at: datetime | None
    done_at: datetime | None
    since: datetime
    """When this target's clock started (the unique key of its ``sla_alert`` rows)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "due_at": _iso(self.due_at),
            "warn_at": _iso(self.warn_at),
            "done_at": _iso(self.done_at),
            "since": _iso(self.since),
        }


@dataclass(frozen=True)
class SlaView:
    policy_id: int
    state: SlaState
    due_at: datetime | None
    """The nearest due time of the targets still running (None: none is)."""
    paused_since: datetime | None
    targets: tuple[TargetState, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "state": str(self.state),
            "due_at": _iso(self.due_at),
            "paused_since": _iso(self.paused_since),
            "targets": {t.target: t.as_dict() for t in self.targets},
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _target_columns(
    ticket: Ticket, target: str
) -> tuple[datetime | None, datetime | None, datetime | None, datetime | None]:
    """(due, warn, done, since) of one target, from the ticket's columns."""
    if target == "first_response":
        return (
            ticket.first_response_due_at,
            ticket.first_response_warn_at,
            ticket.first_responded_at,
            ticket.created_at,
        )
    if target == "next_response":
        return (
            ticket.next_response_due_at,
            ticket.next_response_warn_at,
            ticket.next_responded_at,
            ticket.next_response_since,
        )
    resolution = ticket.resolution_due_at, ticket.resolution_warn_at, ticket.resolved_at
    return (*resolution, ticket.created_at)


def target_state(
    due: datetime, warn: datetime | None, done: datetime | None, paused: datetime | None,
    now: datetime,
) -> SlaState:  # fmt: skip
    """One target's state: met or breached once done; while paused, breached only if it was
    already due when the pause began; else breached, warning or on track by ``now``."""
    due = as_utc(due)
    if done is not None:
        return SlaState.met if as_utc(done) <= due else SlaState.breached
    if paused is not None:
        return SlaState.breached if due <= as_utc(paused) else SlaState.paused
    if now >= due:
        return SlaState.breached
    if warn is not None and now >= as_utc(warn):
        return SlaState.warning
    return SlaState.on_track


def sla_view(ticket: Ticket, now: datetime) -> SlaView | None:
    """The ticket's SLA now; None when no policy applies to it (or it sets no target).

    Resolving a ticket ends every clock still running (as Zendesk's SLAs do): a response never
    given is done when the ticket was resolved, met or breached by that time."""
    if ticket.sla_policy_id is None:
        return None
    targets: list[TargetState] = []
    for target in SLA_TARGETS:
        due, warn, done, since = _target_columns(ticket, target)
        if due is None or since is None:
            continue
        done = done or ticket.resolved_at
        state = target_state(due, warn, done, ticket.sla_paused_at, now)
        targets.append(
            TargetState(
                target,
                state,
                as_utc(due),
                warn and as_utc(warn),
                done and as_utc(done),
                as_utc(since),
            )  # fmt: skip
        )
    if not targets:
        return None
    running = [t.due_at for t in targets if t.done_at is None]
    return SlaView(
        policy_id=ticket.sla_policy_id,
        state=min((t.state for t in targets), key=STATE_RANK.__getitem__),
        due_at=min(running) if running else None,
        paused_since=ticket.sla_paused_at and as_utc(ticket.sla_paused_at),
        targets=tuple(targets),
    )


# -- the clocks ---------------------------------------------------------------------------------


def _matching(
    session: Session, team_id: int, priority: str
) -> tuple[SlaPolicy, SlaCalendar | None] | None:
    """The first enabled policy by position for this team (or any) and priority (or any), with
    its calendar: one query (a check-in runs it)."""
    row = session.exec(
        select(SlaPolicy, SlaCalendar)
        .outerjoin(SlaCalendar, col(SlaCalendar.id) == col(SlaPolicy.calendar_id))
        .where(
            col(SlaPolicy.enabled),
            or_(col(SlaPolicy.team_id).is_(None), col(SlaPolicy.team_id) == team_id),
            or_(col(SlaPolicy.priority).is_(None), col(SlaPolicy.priority) == priority),
        )
        .order_by(col(SlaPolicy.position), col(SlaPolicy.id))
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def matching_policy(session: Session, team_id: int, priority: str) -> SlaPolicy | None:
    """The policy that applies to a ticket of this team and priority (None: no SLA)."""
    found = _matching(session, team_id, priority)
    return None if found is None else found[0]


def _hours_of(calendar: SlaCalendar | None) -> DeskHours | None:
    return None if calendar is None else DeskHours.of(calendar)


def policy_hours(session: Session, policy: SlaPolicy | None) -> DeskHours | None:
    """The policy's desk hours (None: around the clock)."""
    if policy is None or policy.calendar_id is None:
        return None
    return _hours_of(session.get(SlaCalendar, policy.calendar_id))


def _minutes(policy: SlaPolicy | SlaPolicyDefinition, target: str) -> int | None:
    value: int | None = getattr(policy, f"{target}_minutes")
    return value


def _set_target(
    ticket: Ticket,
    target: str,
    policy: SlaPolicy | SlaPolicyDefinition | None,
    hours: DeskHours | None,
    start: datetime | None,
    extra: float = 0.0,
) -> None:
    """Write one target's due and warning times: ``policy``'s target counted from ``start``,
    plus ``extra`` desk minutes (time already paused); none if it sets no such target. A new
    ticket (``start_clocks``) takes them in its fields straight (``in_hand.set_new``)."""
    minutes = None if policy is None or start is None else _minutes(policy, target)
    if minutes is None or policy is None or start is None:
        set_new(ticket, **{f"{target}_due_at": None, f"{target}_warn_at": None})
        return
    warn = minutes * policy.warn_percent / 100 + extra
    set_new(ticket, **{
        f"{target}_due_at": add_desk_minutes(hours, start, minutes + extra),
        f"{target}_warn_at": add_desk_minutes(hours, start, warn),
    })  # fmt: skip


def _start(ticket: Ticket, target: str) -> datetime | None:
    return ticket.next_response_since if target == "next_response" else ticket.created_at


def start_clocks(session: Session, ticket: Ticket) -> None:
    """At creation: the matching policy's first-response and resolution times (in the caller's
    transaction; the caller flushes)."""
    known = desk_definitions(session)  # the policies cached: a check-in reads none
    policy = next(
        (
            p
            for p in known.sla_policies
            if p.team_id in (None, ticket.team_id) and p.priority in (None, ticket.priority)
        ),
        None,
    )
    if policy is None:
        return
    hours = None
    if policy.calendar_id is not None and policy.calendar_id in known.sla_calendars:
        hours = known.worked_out.get(("desk hours", policy.calendar_id))
        if hours is None:
            hours = DeskHours.of(known.sla_calendars[policy.calendar_id])
            known.worked_out[("desk hours", policy.calendar_id)] = hours
    set_new(ticket, sla_policy_id=policy.id)
    for target in ("first_response", "resolution"):
        _set_target(ticket, target, policy, hours, ticket.created_at)


def reapply_policy(session: Session, ticket: Ticket) -> None:
    """After a team or priority change: the policy that matches now, its times counted from the
    same starts as before; the desk minutes the old due times had been moved out by pauses are
    added to the new ones. Nothing changes when the same policy still applies."""
    policy = matching_policy(session, ticket.team_id, ticket.priority)
    new_id = policy.id if policy is not None else None
    if new_id == ticket.sla_policy_id:
        return
    old = session.get(SlaPolicy, ticket.sla_policy_id) if ticket.sla_policy_id else None
    old_hours, hours = policy_hours(session, old), policy_hours(session, policy)
    for target in SLA_TARGETS:
        start, due = _start(ticket, target), getattr(ticket, f"{target}_due_at")
        extra = 0.0
        old_minutes = _minutes(old, target) if old is not None else None
        if start is not None and due is not None and old_minutes is not None:
            extra = max(0.0, desk_minutes_between(old_hours, start, due) - old_minutes)
        _set_target(ticket, target, policy, hours, start, extra)
    ticket.sla_policy_id = new_id
    session.add(ticket)


def note_response(ticket: Ticket, at: datetime) -> None:
    """A reply to the customer: the first response if there was none, and the answer to a
    running next-response clock."""
    if ticket.first_responded_at is None:
        ticket.first_responded_at = at
    if ticket.next_response_since is not None and ticket.next_responded_at is None:
        ticket.next_responded_at = at


def start_next_response(session: Session, ticket: Ticket, at: datetime) -> None:
    """A customer message: start the next-response clock if the policy has that target, the
    first response was made (before it, the first-response clock is the one running) and no
    next-response clock is running already (the customer waits since their first message)."""
    if ticket.sla_policy_id is None or ticket.first_responded_at is None:
        return
    if ticket.next_response_since is not None and ticket.next_responded_at is None:
        return
    policy = session.get(SlaPolicy, ticket.sla_policy_id)
    if policy is None or policy.next_response_minutes is None:
        return
    ticket.next_response_since, ticket.next_responded_at = at, None
    _set_target(ticket, "next_response", policy, policy_hours(session, policy), at)
    session.add(ticket)


def _running(ticket: Ticket, *, reopening: bool) -> list[str]:
    """The targets whose clocks run (set, not done); the resolution too when ``reopening``."""
    done = {
        "first_response": ticket.first_responded_at,
        "next_response": ticket.next_responded_at,
        "resolution": None if reopening else ticket.resolved_at,
    }
    return [
        target
        for target in SLA_TARGETS
        if done[target] is None and getattr(ticket, f"{target}_due_at") is not None
    ]


def _shift(
    session: Session, ticket: Ticket, since: datetime, at: datetime, *, reopening: bool
) -> None:
    """Move every running due and warning time out by the desk minutes from ``since`` to ``at``."""
    if ticket.sla_policy_id is None:
        return
    hours = policy_hours(session, session.get(SlaPolicy, ticket.sla_policy_id))
    stopped = desk_minutes_between(hours, since, at)
    if stopped <= 0:
        return
    for target in _running(ticket, reopening=reopening):
        for column in (f"{target}_due_at", f"{target}_warn_at"):
            value = getattr(ticket, column)
            if value is not None:
                setattr(ticket, column, add_desk_minutes(hours, value, stopped))


def status_changed(
    session: Session, ticket: Ticket, old_category: str, new_category: str, at: datetime
) -> None:
    """The clocks around a status change, called before the change's own times are written
    (``resolved_at`` still the old one): a reopen and the end of a pause move the running
    clocks out by the desk time they stood still; entering a paused status stops them."""
    reopened = old_category == StatusCategory.resolved != new_category
    if reopened and ticket.resolved_at is not None:
        _shift(session, ticket, ticket.resolved_at, at, reopening=True)
    if old_category == StatusCategory.paused and new_category != StatusCategory.paused:
        if ticket.sla_paused_at is not None:
            _shift(session, ticket, ticket.sla_paused_at, at, reopening=False)
        ticket.sla_paused_at = None
    if new_category == StatusCategory.paused and ticket.sla_paused_at is None:
        ticket.sla_paused_at = at
    session.add(ticket)


def ticket_sla(session: Session, ticket: Ticket, now: datetime) -> dict[str, Any] | None:
    """The ticket's SLA as ``ticket show --json`` gives it: the view and its policy's name
    (None if the policy was deleted since); None when no policy applies."""
    view = sla_view(ticket, now)
    if view is None:
        return None
    policy = session.get(SlaPolicy, view.policy_id)
    return {**view.as_dict(), "policy": policy.name if policy is not None else None}
