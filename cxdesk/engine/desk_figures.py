"""Desk-wide figures for scheduled workflows: the ``${desk://...}`` values of a digest.

A scheduled run covers the time since the workflow's last run (``since``) up to its own
instant (``until``); "today" is the desk's day (its ``time_zone``) up to ``until``; "open"
and "waiting" are now. Each figure is read from the database the first time a template or
condition names it (``piped.DESK_FIELDS`` lists them), with one query, never a ticket loaded.

``SlaBreaches`` reads the ``sla_alert`` table (one row per ticket, target, kind and start:
``store.sla``): the breaches raised in the period, one line per ticket and target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from cxdesk.engine.piped import DESK_FIELDS
from cxdesk.store.models import SlaAlert, Status, StatusCategory, Team, Ticket
from cxdesk.store.reports import csat_report

MAX_BREACH_LINES = 200


class DeskFigures(Mapping[str, str]):
    """The figures of one scheduled run, as text, each computed on first use."""

    def __init__(self, session: Session, *, since: datetime, until: datetime, zone: ZoneInfo):
        self._session, self.since, self.until, self.zone = session, since, until, zone
        self._values: dict[str, str] = {"Since": self._local(since), "Until": self._local(until)}
        self._readers: dict[str, Callable[[], str]] = {
            "TicketsCreated": lambda: self._count(Ticket.created_at, self.since),
            "TicketsResolved": lambda: self._count(Ticket.resolved_at, self.since),
            "TicketsCreatedToday": lambda: self._count(Ticket.created_at, self.day_start),
            "TicketsResolvedToday": lambda: self._count(Ticket.resolved_at, self.day_start),
            "TicketsOpen": lambda: str(self._open(waiting=False)),
            "TicketsWaiting": lambda: str(self._open(waiting=True)),
            "Teams": self._teams,
            "CsatToday": self._csat,
            "SlaBreaches": self._breaches,
        }

    @property
    def day_start(self) -> datetime:
        return datetime.combine(self.until.astimezone(self.zone).date(), time(), self.zone)

    def _local(self, moment: datetime) -> str:
        return f"{moment.astimezone(self.zone):%Y-%m-%d %H:%M}"

    def __getitem__(self, name: str) -> str:
        if name not in self._values:
            self._values[name] = self._readers[name]()
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(DESK_FIELDS)

    def __len__(self) -> int:
        return len(DESK_FIELDS)

    def _count(self, moment: object, start: datetime) -> str:
        column_ = col(moment)
        statement = select(func.count()).select_from(Ticket)
        statement = statement.where(column_ >= start, column_ < self.until)
        return str(self._session.exec(statement).one())

    def _open(self, *, waiting: bool) -> int:
        statement = (
            select(func.count())
            .select_from(Ticket)
            .join(Status, col(Status.name) == col(Ticket.status))
            .where(Status.category != StatusCategory.resolved)
        )
        if waiting:
            statement = statement.where(col(Ticket.owner_id).is_(None))
        return self._session.exec(statement).one()

    def _teams(self) -> str:
        def per_team(*where: object) -> dict[int | None, int]:
            statement = select(Ticket.team_id, func.count()).group_by(col(Ticket.team_id))
            if where:
                statement = statement.where(*where)  # type: ignore[arg-type]
            return dict(self._session.exec(statement).all())

        created = per_team(col(Ticket.created_at) >= self.since,
                           col(Ticket.created_at) < self.until)  # fmt: skip
        resolved = per_team(col(Ticket.resolved_at) >= self.since,
                            col(Ticket.resolved_at) < self.until)  # fmt: skip
        resolved_statuses = select(Status.name).where(Status.category == StatusCategory.resolved)
        still_open = per_team(col(Ticket.status).not_in(resolved_statuses))
        teams = self._session.exec(select(Team.id, Team.name).order_by(col(Team.name))).all()
        return "\n".join(
            f"{name}: {created.get(team_id, 0)} created, {resolved.get(team_id, 0)} resolved, "
            f"{still_open.get(team_id, 0)} open"
            for team_id, name in teams
        )

    def _csat(self) -> str:
        total = csat_report(self._session, since=self.day_start)[-1]
        if not total.csat_answers or total.csat_percent is None:
            return "no answers"
        return (f"{total.csat_percent:.0f}% satisfied, {total.csat_average:.1f} average "
                f"({total.csat_answers} answers)")  # fmt: skip

    def _breaches(self) -> str:
        statement = (
            select(Ticket.key, Ticket.title, SlaAlert.target, SlaAlert.due_at)
            .join(SlaAlert, col(SlaAlert.ticket_id) == col(Ticket.id))
            .where(
                SlaAlert.kind == "breached",
                SlaAlert.created_at >= self.since,
                SlaAlert.created_at < self.until,
            )  # fmt: skip
            .order_by(col(SlaAlert.due_at), col(Ticket.id))
            .limit(MAX_BREACH_LINES + 1)
        )
        rows = self._session.exec(statement).all()
        lines = [
            f"{key} {title}: {target} due {self._local(due_at) if due_at else '?'}"
            for key, title, target, due_at in rows[:MAX_BREACH_LINES]
        ]
        if len(rows) > MAX_BREACH_LINES:
            lines.append(f"... and more (the first {MAX_BREACH_LINES} are listed)")
        return "\n".join(lines) or "none"
