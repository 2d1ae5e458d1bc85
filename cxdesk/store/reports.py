"""CSAT and NPS results, overall or per expert or team (``cxdesk report csat``).

- CSAT: answers to surveys of kind ``csat``; the score is the survey's first number question
  (1-5 in the demo desk). CSAT % is the share of answers in the top two points (4 and 5 of 5).
- NPS: answers to surveys of kind ``nps``; the score is the first number question (0-10).
  NPS = % promoters (9-10) - % detractors (0-6), from -100 to 100.

A CSAT answer belongs to the expert its link named and to its ticket's team. An NPS answer
has no expert; its team is its ticket's, else the team its ``product`` answer names.

Times per team (``team_times``, the admin's Insights screen): the wait to pull (a ticket's
creation -> the first time an expert pulled it from a queue, its first
``ticket.assigned_from_queue`` event) and the time to resolve (creation -> ``resolved_at``),
each as count, median and 90th percentile, computed by the database (window functions, the
same SQL on SQLite and PostgreSQL): no ticket is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, case, func
from sqlmodel import Session, col, select

from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _
from cxdesk.store.models import Event, Survey, SurveyResponse, Team, Ticket, User, utcnow
from cxdesk.store.tickets import format_wait

GROUPINGS = ("expert", "team")
NO_GROUP = N_("(none)")
TOTAL = N_("All")


def group_label(group: str) -> str:
    """A report group as a person reads it: the total and the no-group rows in their language
    (``--json`` keeps ``All`` and ``(none)``), a team's or an expert's name as it is."""
    return _(group) if group in (NO_GROUP, TOTAL) else group


@dataclass
class ScoreRow:
    """One line of the report: CSAT and NPS of a group of answers."""

    group: str
    csat_answers: int = 0
    csat_satisfied: int = 0
    csat_points: int = 0
    nps_answers: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def csat_percent(self) -> float | None:
        return 100 * self.csat_satisfied / self.csat_answers if self.csat_answers else None

    @property
    def csat_average(self) -> float | None:
        return self.csat_points / self.csat_answers if self.csat_answers else None

    @property
    def nps(self) -> float | None:
        if not self.nps_answers:
            return None
        return 100 * (self.promoters - self.detractors) / self.nps_answers

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "csat_percent": self.csat_percent,
            "csat_average": self.csat_average,
            "nps": self.nps,
        }


PERIOD = re.compile(r"(\d{1,5})([hdw])")
PERIOD_HOURS = {"h": 1, "d": 24, "w": 7 * 24}


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``YYYY-MM-DD`` as the start of that day in the local time zone, or a period back from
    ``now`` (``24h``, ``7d``, ``2w``), in UTC."""
    period = PERIOD.fullmatch(value.strip().lower())
    if period:
        hours = int(period[1]) * PERIOD_HOURS[period[2]]
        return (now or utcnow()) - timedelta(hours=hours)
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise DeskError(
            _("--since: {value!r} is not a date (YYYY-MM-DD) or a period (24h, 7d, 2w)").format(
                value=value
            )
        ) from None
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


def check_grouping(by: str | None) -> None:
    """Refuse a ``--by`` that is not one of ``GROUPINGS``."""
    if by is not None and by not in GROUPINGS:
        raise DeskError(
            _("--by must be one of {choices}, not {by!r}").format(
                choices=", ".join(GROUPINGS), by=by
            )
        )


def _score_question(survey: Survey) -> tuple[str, int] | None:
    """The id and top of the survey's first number question."""
    for question in survey.questions:
        if question.get("type") == "number":
            return str(question["id"]), int(question.get("max", 10))
    return None


def _score(answers: Mapping[str, Any], question: str) -> int | None:
    value = answers.get(question)
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def csat_report(
    session: Session, *, by: str | None = None, since: datetime | None = None
) -> list[ScoreRow]:
    """One row per group (by name), then the ``All`` row; without ``by``, ``All`` only."""
    check_grouping(by)
    surveys = {
        s.id: s
        for s in session.exec(select(Survey).where(col(Survey.kind).in_(("csat", "nps")))).all()
    }
    if not surveys:
        return [ScoreRow(TOTAL)]
    # Only the columns the report needs, the ticket's team joined in: no ORM objects, and no
    # IN list of ticket ids (a long one exceeds the databases' bound-parameter limits).
    statement = (
        select(
            SurveyResponse.survey_id,
            SurveyResponse.expert_id,
            SurveyResponse.answers,
            Ticket.team_id,
        )
        .outerjoin(Ticket, col(Ticket.id) == col(SurveyResponse.ticket_id))
        .where(col(SurveyResponse.survey_id).in_(list(surveys)))
    )
    if since is not None:
        statement = statement.where(col(SurveyResponse.created_at) >= since)
    answers = session.exec(statement).all()
    teams = dict(session.exec(select(Team.id, Team.name)).all())
    team_names = set(teams.values())
    experts = dict(session.exec(select(User.id, User.username)).all())

    def group_of(expert_id: int | None, team_id: int | None, given: Mapping[str, Any]) -> str:
        if by == "expert":
            return experts.get(expert_id, NO_GROUP) if expert_id else NO_GROUP
        if team_id is not None:
            return teams.get(team_id, NO_GROUP)
        product = str(given.get("product", ""))
        return product if product in team_names else NO_GROUP

    total = ScoreRow(TOTAL)
    groups: dict[str, ScoreRow] = {}
    for survey_id, expert_id, given, team_id in answers:
        survey = surveys[survey_id]
        question = _score_question(survey)
        score = _score(given, question[0]) if question else None
        if question is None or score is None:
            continue
        targets = [total]
        if by is not None:
            name = group_of(expert_id, team_id, given)
            targets.append(groups.setdefault(name, ScoreRow(name)))
        for row in targets:
            if survey.kind == "csat":
                row.csat_answers += 1
                row.csat_points += score
                row.csat_satisfied += score >= question[1] - 1
            else:
                row.nps_answers += 1
                row.promoters += score >= 9
                row.passives += 7 <= score <= 8
                row.detractors += score <= 6
    ordered = sorted(groups.values(), key=lambda r: (r.group == NO_GROUP, r.group.casefold()))
    return [*ordered, total]


# -- wait and resolve times per team -----------------------------------------------------------

PULLED_KIND = "ticket.assigned_from_queue"


@dataclass(frozen=True)
class Durations:
    """How long one step took over a group of tickets, in seconds (None: no ticket).

    The median of an even count is the mean of the two middle values; the 90th percentile is
    the nearest rank (the smallest time at least 90% of the tickets took no longer than).
    """

    count: int = 0
    median: float | None = None
    p90: float | None = None


NO_FIGURE = "–"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def shown_seconds(seconds: float | None) -> str:
    """A duration as the desk shows waits (``7m``, ``1h 05m``); a dash for none."""
    if seconds is None:
        return NO_FIGURE
    return format_wait(_EPOCH, _EPOCH + timedelta(seconds=seconds))


@dataclass(frozen=True)
class TeamTimes:
    """One team's (or ``All``'s) wait to pull and time to resolve."""

    team: str
    wait: Durations
    """Creation -> first pulled from a queue, over the tickets pulled from a queue."""
    resolve: Durations
    """Creation -> resolved, over the tickets resolved now."""


def seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _ms(seconds: Any) -> float:
    """To the millisecond: SQLite's julianday() arithmetic is off by some microseconds (a 50
    minute wait came back as 2999.99998 s and was shown as 49m)."""
    return round(float(seconds), 3)


def durations(session: Session, spans: Subquery, *, per_group: bool) -> dict[int | None, Durations]:
    """Count, median and p90 of ``spans`` (columns ``group_id``, ``seconds``), per group or
    for all of them (key None), in one statement."""
    group = spans.c.group_id if per_group else None
    ranked = select(
        spans.c.group_id,
        spans.c.seconds,
        func.row_number().over(partition_by=group, order_by=spans.c.seconds).label("rank"),
        func.count().over(partition_by=group).label("n"),
    ).subquery()
    rank, n, seconds = ranked.c.rank, ranked.c.n, ranked.c.seconds
    # The middle row (odd n) or the two middle rows (even n): rank * 2 is n, n + 1 or n + 2.
    middle = case(((rank * 2).between(n, n + 2), seconds))
    nearest_p90 = case((rank * 10 >= n * 9, seconds))
    measures = (func.count(), func.avg(middle), func.min(nearest_p90))
    found: dict[int | None, Durations] = {}
    if per_group:
        rows = session.execute(select(ranked.c.group_id, *measures).group_by(ranked.c.group_id))
        for group_id, count, median, p90 in rows:
            found[group_id] = Durations(int(count), _ms(median), _ms(p90))
    else:
        count, median, p90 = session.execute(select(*measures)).one()
        if count:
            found[None] = Durations(int(count), _ms(median), _ms(p90))
    return found


def team_times(session: Session, *, since: datetime | None = None) -> list[TeamTimes]:
    """Every team (by name), then ``All``: wait to pull and time to resolve of the tickets
    created since ``since`` (all tickets without it)."""
    created_since = [col(Ticket.created_at) >= since] if since is not None else []
    # Each ticket's first pull, through the ticket's own log lines (ix_event_ticket): the log
    # has no index on kind or time (migration 0007), and only the tickets asked for are read.
    first_pull = (
        select(func.min(Event.created_at))
        .where(col(Event.ticket_id) == col(Ticket.id), col(Event.kind) == PULLED_KIND)
        .correlate(Ticket)
        .scalar_subquery()
    )
    pulled = (
        select(col(Ticket.team_id), col(Ticket.created_at), first_pull.label("at"))
        .where(*created_since)
        .subquery()
    )
    waits: Select = select(
        pulled.c.team_id.label("group_id"),
        seconds_between(session, pulled.c.created_at, pulled.c.at).label("seconds"),
    ).where(pulled.c.at.is_not(None))
    resolves: Select = select(
        col(Ticket.team_id).label("group_id"),
        seconds_between(session, Ticket.created_at, Ticket.resolved_at).label("seconds"),
    ).where(col(Ticket.resolved_at).is_not(None), *created_since)
    wait_spans, resolve_spans = waits.subquery(), resolves.subquery()
    wait = {
        **durations(session, wait_spans, per_group=True),
        **durations(session, wait_spans, per_group=False),
    }
    resolve = {
        **durations(session, resolve_spans, per_group=True),
        **durations(session, resolve_spans, per_group=False),
    }
    teams = session.exec(select(Team.id, Team.name)).all()
    rows = [
        TeamTimes(name, wait.get(team_id, Durations()), resolve.get(team_id, Durations()))
        for team_id, name in sorted(teams, key=lambda t: t[1].casefold())
    ]
    return [*rows, TeamTimes(TOTAL, wait.get(None, Durations()), resolve.get(None, Durations()))]
