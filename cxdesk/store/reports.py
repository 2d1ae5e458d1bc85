"""CSAT and NPS results, overall or per expert or team (``cxdesk report csat``).

- CSAT: answers to surveys of kind ``csat``; the score is the survey's first number question
  (1-5 in the demo desk). CSAT % is the share of answers in the top two points (4 and 5 of 5).
- NPS: answers to surveys of kind ``nps``; the score is the first number question (0-10).
  NPS = % promoters (9-10) - % detractors (0-6), from -100 to 100.

A CSAT answer belongs to the expert its link named and to its ticket's team. An NPS answer
has no expert; its team is its ticket's, else the team its ``product`` answer names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlmodel import Session, col, select

from cxdesk.errors import DeskError
from cxdesk.store.models import Survey, SurveyResponse, Team, Ticket, User

GROUPINGS = ("expert", "team")
NO_GROUP = "(none)"
TOTAL = "All"


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


def parse_since(value: str) -> datetime:
    """``YYYY-MM-DD`` as the start of that day in the local time zone, in UTC."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise DeskError(f"--since: {value!r} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


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
    if by is not None and by not in GROUPINGS:
        raise DeskError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    surveys = {
        s.id: s
        for s in session.exec(select(Survey).where(col(Survey.kind).in_(("csat", "nps")))).all()
    }
    if not surveys:
        return [ScoreRow(TOTAL)]
    statement = select(SurveyResponse).where(col(SurveyResponse.survey_id).in_(list(surveys)))
    if since is not None:
        statement = statement.where(col(SurveyResponse.created_at) >= since)
    answers = session.exec(statement).all()
    teams = {t.id: t.name for t in session.exec(select(Team)).all()}
    team_names = set(teams.values())
    experts = {u.id: u.username for u in session.exec(select(User)).all()}
    ticket_ids = {r.ticket_id for r in answers if r.ticket_id is not None}
    ticket_team: dict[int | None, int] = {}
    if ticket_ids:
        rows = session.exec(
            select(Ticket.id, Ticket.team_id).where(col(Ticket.id).in_(ticket_ids))
        ).all()
        ticket_team = dict(rows)

    def group_of(response: SurveyResponse) -> str:
        if by == "expert":
            return experts.get(response.expert_id, NO_GROUP) if response.expert_id else NO_GROUP
        if response.ticket_id in ticket_team:
            return teams.get(ticket_team[response.ticket_id], NO_GROUP)
        product = str(response.answers.get("product", ""))
        return product if product in team_names else NO_GROUP

    total = ScoreRow(TOTAL)
    groups: dict[str, ScoreRow] = {}
    for response in answers:
        survey = surveys[response.survey_id]
        question = _score_question(survey)
        score = _score(response.answers, question[0]) if question else None
        if question is None or score is None:
            continue
        targets = [total]
        if by is not None:
            name = group_of(response)
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
