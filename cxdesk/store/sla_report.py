"""The SLA report (``cxdesk report sla``, the Insights screen's panel): per target, how many
tickets met it and how many breached it, the attainment (met / (met + breached)), and the time
to the target (count, median, 90th percentile), overall or per team or expert (the owner).

Measured over the tickets with a policy created since a time (all without it), from their own
columns (``store.sla``), with SQL aggregates (no ticket is loaded):
- met: the target done by its due time; breached: done after it, or not done and due by now
  (a paused ticket only if it was due when the pause began); a target still running on time,
  or paused, counts in neither.
- time to the target, in wall-clock time (not desk hours), over the targets done: first
  response = creation -> first response, resolution = creation -> resolved, next response =
  the customer's last message -> the answer to it (a ticket keeps only its latest next-response
  clock, so earlier rounds are not in it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, null, or_
from sqlmodel import Session, col, select

from cxdesk.i18n import N_, _
from cxdesk.store.models import Team, Ticket, User
from cxdesk.store.reports import (
    NO_FIGURE,
    NO_GROUP,
    TOTAL,
    Durations,
    check_grouping,
    durations,
    group_label,
    seconds_between,
    shown_seconds,
)
from cxdesk.store.sla import SLA_TARGETS, TARGET_WORDS
from cxdesk.store.sla_alerts import TARGET_COLUMNS


@dataclass(frozen=True)
class TargetFigures:
    """One target's figures over a group of tickets."""

    met: int = 0
    breached: int = 0
    times: Durations = field(default_factory=Durations)
    """Start -> done over the targets done (met or late), in seconds."""

    @property
    def attainment(self) -> float | None:
        """Met / (met + breached), in %; None when no ticket counts yet."""
        counted = self.met + self.breached
        return 100 * self.met / counted if counted else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "breached": self.breached,
            "attainment_percent": self.attainment,
            "done": self.times.count,
            "median_seconds": self.times.median,
            "p90_seconds": self.times.p90,
        }


@dataclass(frozen=True)
class SlaRow:
    """One line of the report: a team's, an expert's, or ``All``."""

    group: str
    targets: dict[str, TargetFigures]

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, **{t: f.to_dict() for t, f in self.targets.items()}}


def _group_column(by: str | None) -> Any:
    """The column a grouping groups by; None: no grouping."""
    if by == "expert":
        return col(Ticket.owner_id)
    return col(Ticket.team_id) if by == "team" else None


def _labelled(group: Any) -> Any:
    """The group's column as ``group_id`` (a NULL when not grouped: no GROUP BY a constant,
    which PostgreSQL refuses)."""
    return (null() if group is None else group).label("group_id")


def _counts(
    session: Session, target: str, group: Any, where: list[Any], now: datetime
) -> dict[int | None, tuple[int, int]]:
    """(met, breached) per group (key None: the only group when not grouped)."""
    due, _warn, done, _since = TARGET_COLUMNS[target]
    met = and_(done.is_not(None), done <= due)
    breached = or_(
        and_(done.is_not(None), done > due),
        and_(done.is_(None), due <= func.coalesce(col(Ticket.sla_paused_at), now)),
    )
    statement: Select[Any] = select(
        _labelled(group),
        func.sum(case((met, 1), else_=0)),
        func.sum(case((breached, 1), else_=0)),
    ).where(*where, due.is_not(None))
    if group is not None:
        statement = statement.group_by(group)
    return {group_id: (int(m or 0), int(b or 0)) for group_id, m, b in session.execute(statement)}


def _times(
    session: Session, target: str, group: Any, where: list[Any], *, per_group: bool
) -> dict[int | None, Durations]:
    due, _warn, done, since = TARGET_COLUMNS[target]
    spans = (
        select(
            _labelled(group),
            seconds_between(session, since, done).label("seconds"),
        )
        .where(*where, due.is_not(None), done.is_not(None), since.is_not(None))
        .subquery()
    )
    return durations(session, spans, per_group=per_group)


def _names(session: Session, by: str | None) -> dict[int, str]:
    if by == "expert":
        return {i: n for i, n in session.exec(select(User.id, User.username)).all() if i}
    if by == "team":
        return {i: n for i, n in session.exec(select(Team.id, Team.name)).all() if i}
    return {}


def sla_report(
    session: Session, *, now: datetime, by: str | None = None, since: datetime | None = None
) -> list[SlaRow]:
    """One row per team or expert (by name; ``(none)``: no owner) that has tickets with a
    policy, then ``All``; without ``by``, ``All`` only."""
    check_grouping(by)
    where: list[Any] = [col(Ticket.sla_policy_id).is_not(None)]
    if since is not None:
        where.append(col(Ticket.created_at) >= since)
    group = _group_column(by)
    figures: dict[int | None, dict[str, TargetFigures]] = {}
    total: dict[str, TargetFigures] = {}
    for target in SLA_TARGETS:
        counts = _counts(session, target, group, where, now)
        times = _times(session, target, group, where, per_group=True) if by else {}
        for group_id, (met, breached) in counts.items():
            figures.setdefault(group_id, {})[target] = TargetFigures(
                met, breached, times.get(group_id, Durations())
            )
        all_times = _times(session, target, None, where, per_group=False)
        total[target] = TargetFigures(
            sum(m for m, _b in counts.values()),
            sum(b for _m, b in counts.values()),
            all_times.get(None, Durations()),
        )
    rows: list[SlaRow] = []
    if by is not None:
        names = _names(session, by)
        for group_id, targets in figures.items():
            name = names.get(group_id, NO_GROUP) if group_id is not None else NO_GROUP
            rows.append(SlaRow(name, {t: targets.get(t, TargetFigures()) for t in SLA_TARGETS}))
        rows.sort(key=lambda r: (r.group == NO_GROUP, r.group.casefold()))
    return [*rows, SlaRow(TOTAL, total)]


NOTHING_YET = N_("No ticket with an SLA policy has met or breached a target yet")
REPORT_COLUMNS = (
    N_("target"),
    N_("attainment"),
    N_("met"),
    N_("breached"),
    N_("done"),
    N_("median"),
    N_("p90"),
)
"""The columns of ``report_lines`` after the group's."""


def report_lines(rows: list[SlaRow]) -> list[tuple[str, ...]]:
    """A line per group and target (the group named on its first line only); targets no
    ticket of the group has are left out."""
    lines: list[tuple[str, ...]] = []
    for row in rows:
        first = True
        for target, figures in row.targets.items():
            if not (figures.met or figures.breached or figures.times.count):
                continue
            attainment = figures.attainment
            lines.append(
                (
                    group_label(row.group) if first else "",
                    _(TARGET_WORDS[target]),
                    NO_FIGURE if attainment is None else f"{attainment:.1f}%",
                    str(figures.met),
                    str(figures.breached),
                    str(figures.times.count),
                    shown_seconds(figures.times.median),
                    shown_seconds(figures.times.p90),
                )
            )
            first = False
    return lines
