"""A ticket's SLA as the desk shows it: the columns a page reads (``SlaTimes``, enough for
``store.sla.sla_view`` at any later time, so a screen redraws the state as the clock moves
without reading again), the list's SLA sort (in SQL) and the words ("warning · 3m left").

The screens add colour to these words (``widgets.sla``); the exports and ``cxdesk tickets``
use them as they are. No Rich or Textual here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from cxdesk.i18n import _
from cxdesk.local_time import shown_time, shown_zone
from cxdesk.store.models import Status, StatusCategory, Ticket, as_utc
from cxdesk.store.sla import STATE_WORDS, TARGET_WORDS, SlaState, SlaView, sla_view
from cxdesk.store.tickets import format_wait


@dataclass(frozen=True)
class SlaTimes:
    """The ticket columns ``sla_view`` reads, kept without the ticket (a page row, a card).
    Field names are the ticket's column names."""

    sla_policy_id: int | None
    created_at: datetime
    resolved_at: datetime | None
    sla_paused_at: datetime | None
    first_response_due_at: datetime | None
    first_response_warn_at: datetime | None
    first_responded_at: datetime | None
    next_response_since: datetime | None
    next_response_due_at: datetime | None
    next_response_warn_at: datetime | None
    next_responded_at: datetime | None
    resolution_due_at: datetime | None
    resolution_warn_at: datetime | None

    def view(self, now: datetime) -> SlaView | None:
        """The SLA at ``now``; None when no policy applies."""
        # sla_view reads only these attributes, which have the ticket's names.
        return sla_view(cast(Ticket, self), now)

    @classmethod
    def of(cls, ticket: Ticket) -> SlaTimes | None:
        return sla_times([getattr(ticket, name) for name in SLA_TIME_NAMES])

    @classmethod
    def columns(cls) -> list[Any]:
        """The columns to add to a SELECT; ``sla_times`` reads them back."""
        return [col(getattr(Ticket, name)) for name in SLA_TIME_NAMES]


SLA_TIME_NAMES = tuple(f.name for f in fields(SlaTimes))


def sla_times(values: Sequence[Any]) -> SlaTimes | None:
    """The ``SlaTimes.columns()`` of one row; None when the ticket has no policy."""
    return SlaTimes(*values) if values[0] is not None else None


def _earlier(a: Any, b: Any) -> Any:
    """The earlier of two nullable times, NULL only when both are (LEAST is not in SQLite,
    and SQLite's min() is NULL when any argument is)."""
    return case((a.is_(None), b), (b.is_(None), a), (a <= b, a), else_=b)


_RUNNING_TARGETS = (
    (Ticket.first_responded_at, Ticket.first_response_due_at, Ticket.first_response_warn_at),
    (Ticket.next_responded_at, Ticket.next_response_due_at, Ticket.next_response_warn_at),
    (Ticket.resolved_at, Ticket.resolution_due_at, Ticket.resolution_warn_at),
)
"""Per target: (done, due, warn) columns."""


def _nearest_running(warn: bool) -> ColumnElement[Any]:
    times = []
    for done, due, warn_at in _RUNNING_TARGETS:
        moment = func.coalesce(col(warn_at), col(due)) if warn else col(due)
        times.append(case((col(done).is_(None), moment)))
    nearest = _earlier(_earlier(times[0], times[1]), times[2])
    return case((col(Ticket.sla_paused_at).is_(None), nearest))


def running_due_expression() -> ColumnElement[Any]:
    """SQL: the nearest due time of the ticket's targets still running; NULL when it has no
    SLA, every target is done, or it is paused (its clocks stand still). The list's SLA sort:
    the most urgent first, breached ones (due in the past) before all."""
    return _nearest_running(warn=False)


# -- the queues --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSla:
    """A team's waiting tickets (unowned, open) whose running targets are past due or past
    their warning time, and the nearest running due time among them all."""

    breached: int
    warning: int
    nearest_due: datetime | None

    def words(self, now: datetime) -> tuple[str, SlaState | None]:
        """``2 breached · 1 warning``, ``on track · due 14:10``, or empty; with the worst state."""
        parts = [_("{n} breached").format(n=self.breached)] if self.breached else []
        parts += [_("{n} warning").format(n=self.warning)] if self.warning else []
        if parts:
            return " · ".join(parts), SlaState.breached if self.breached else SlaState.warning
        if self.nearest_due is None:
            return "", None
        due = _("due {time}").format(time=clock_time(self.nearest_due, now))
        return f"{_(STATE_WORDS[SlaState.on_track])} · {due}", SlaState.on_track


def queue_sla(session: Session, *, now: datetime) -> dict[int, QueueSla]:
    """Per team id (a queue is a team's): its waiting tickets' SLA at ``now``, in one grouped
    SELECT over the same waiting tickets ``store.tickets.queue_overview`` counts."""
    due, warn = running_due_expression(), _nearest_running(warn=True)
    rows = session.execute(
        sa_select(
            col(Ticket.team_id),
            func.count(case((due <= now, 1))),
            func.count(case((warn <= now, 1))),
            func.min(due),
        )
        .join(Status, col(Status.name) == col(Ticket.status))
        .where(
            col(Ticket.owner_id).is_(None),
            col(Status.category) == StatusCategory.open,
            col(Ticket.sla_policy_id).is_not(None),
        )
        .group_by(col(Ticket.team_id))
    ).all()
    return {
        team_id: QueueSla(breached, max(0, late - breached), _parsed(nearest))
        for team_id, breached, late, nearest in rows
    }


def _parsed(value: datetime | str | None) -> datetime | None:
    """An aggregate's time: SQLite gives it back as text, without its zone."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return as_utc(moment)


# -- words -------------------------------------------------------------------------------------


def clock_time(value: datetime, now: datetime) -> str:
    """A due time in the desk's zone (``cxdesk.local_time``): ``14:10`` today, the date and
    time as the language writes them another day."""
    zone = shown_zone()
    local = as_utc(value).astimezone(zone)
    same_day = local.date() == as_utc(now).astimezone(zone).date()
    return local.strftime("%H:%M") if same_day else shown_time(local)


def _deciding(view: SlaView) -> tuple[datetime | None, datetime | None]:
    """(due, done) of the target that gives the ticket its state: a running one first."""
    worst = [t for t in view.targets if t.state == view.state]
    running = [t for t in worst if t.done_at is None]
    chosen = min(running or worst, key=lambda t: t.due_at)
    return chosen.due_at, chosen.done_at


def sla_words(view: SlaView | None, now: datetime, *, compact: bool = False) -> str:
    """The state in words with its time: ``breached · 12m over``, ``warning · 3m left``,
    ``on track · due 14:10``, ``paused · 7m left``, ``met``; empty without a policy.
    ``compact`` (a kanban card): ``breached 12m``, ``warning 3m left``, ``due 14:10``."""
    if view is None:
        return ""
    word = _(STATE_WORDS[view.state])
    due, done = _deciding(view)
    if due is None or done is not None:
        return word  # met, or breached by a target done late
    if view.state == SlaState.on_track:
        when = _("due {time}").format(time=clock_time(due, now))
        return when if compact else f"{word} · {when}"
    if view.state == SlaState.breached:
        over = format_wait(due, now)
        detail = over if compact else _("{duration} over").format(duration=over)  # a card: 16 wide
    else:  # warning, or paused: what was left when the pause began
        start = view.paused_since if view.state == SlaState.paused else None
        detail = _("{duration} left").format(duration=format_wait(start or now, due))
    return f"{word} {detail}" if compact else f"{word} · {detail}"


def target_lines(view: SlaView, now: datetime) -> list[tuple[str, str, str, SlaState]]:
    """Per target: (name, due time, what became of it, state), for the ticket screen:
    ``met at 09:05``, ``breached · done 09:12``, ``warning · 3m left``, ``breached · 4m over``,
    ``paused · 7m left`` (what was left when the pause began)."""
    lines = []
    for target in view.targets:
        word = _(STATE_WORDS[target.state])
        if target.done_at is not None:
            done = clock_time(target.done_at, now)
            happened = (
                _("met at {time}").format(time=done)
                if target.state == SlaState.met
                else f"{word} · " + _("done {time}").format(time=done)
            )
        elif target.state == SlaState.breached:
            over = format_wait(target.due_at, now)
            happened = f"{word} · " + _("{duration} over").format(duration=over)
        else:
            start = view.paused_since if target.state == SlaState.paused else None
            left = format_wait(start or now, target.due_at)
            happened = f"{word} · " + _("{duration} left").format(duration=left)
        name = _(TARGET_WORDS[target.target])
        lines.append((name, clock_time(target.due_at, now), happened, target.state))
    return lines
