"""The figures behind the admin's Insights screen, on SQLite and PostgreSQL: each team's wait
to pull (creation -> first pulled from a queue) and time to resolve (creation -> resolved) as
count, median and 90th percentile (``store.reports.team_times``), over all time or since a
date; and the bar chart's cells (``widgets.bar_chart.bar_cells``).

``build_insights_desk`` (also used by the TUI tests) makes a desk with known times and CSAT
and NPS answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.events import record_event
from cxdesk.store.models import Event, Survey, SurveyResponse, Ticket, utcnow
from cxdesk.store.reports import PULLED_KIND, Durations, TeamTimes, csat_report, team_times
from cxdesk.store.surveys import save_survey
from cxdesk.store.tickets import update_ticket
from cxdesk.widgets.bar_chart import bar_cells
from tests.desk import build_small_desk, pull
from tests.statement_helpers import selects, statements_of
from tests.test_views import make_ticket

MINUTE = 60.0

# -- a desk with known times and answers -------------------------------------------------------


def add_score_surveys(engine: Engine) -> None:
    """The demo desk's CSAT (rating 1-5) and NPS (score 0-10) surveys."""
    with transaction(engine) as s:
        save_survey(s, actor=None, name="csat", title="How did we do?", kind="csat",
                    questions=[{"id": "rating", "label": "Rating", "type": "number",
                                "min": 1, "max": 5, "required": True}])  # fmt: skip
        save_survey(s, actor=None, name="nps", title="Recommend us?", kind="nps",
                    questions=[{"id": "score", "label": "Score", "type": "number",
                                "min": 0, "max": 10, "required": True},
                               {"id": "product", "label": "Product", "type": "text"}])  # fmt: skip


def worked_ticket(
    engine: Engine,
    team: str,
    expert: str,
    *,
    wait_minutes: float,
    resolve_minutes: float | None = None,
    days_ago: float = 0,
) -> str:
    """A ticket of ``team`` that ``expert`` pulled ``wait_minutes`` after it was created (and
    resolved ``resolve_minutes`` after it was created), created ``days_ago`` days (and 8 hours)
    ago."""
    key = make_ticket(engine, f"Help with {team}", team, customer_name="Ada")
    assert pull(engine, expert, team) == key
    with unit_of_work(engine) as s:
        who = get_user(s, expert)
        if resolve_minutes is not None:
            update_ticket(s, actor=who, key=key, comment="Done",
                          changes={"status": "resolved"})  # fmt: skip
    created = utcnow() - timedelta(days=days_ago, hours=8)
    with transaction(engine) as s:
        ticket_id = s.exec(select(Ticket.id).where(Ticket.key == key)).one()
        resolved = None if resolve_minutes is None else created + timedelta(minutes=resolve_minutes)
        s.execute(
            update(Ticket)
            .where(col(Ticket.id) == ticket_id)
            .values(created_at=created, resolved_at=resolved)
        )
        s.execute(
            update(Event)
            .where(col(Event.ticket_id) == ticket_id, col(Event.kind) == PULLED_KIND)
            .values(created_at=created + timedelta(minutes=wait_minutes))
        )
    return key


def answer(
    engine: Engine,
    survey: str,
    score: int,
    *,
    key: str | None = None,
    expert: str | None = None,
    product: str | None = None,
    days_ago: float = 0,
) -> None:
    """A stored answer, as a CSAT link (ticket and expert) or an NPS import leaves it."""
    with transaction(engine) as s:
        survey_id = s.exec(select(Survey.id).where(Survey.name == survey)).one()
        assert survey_id is not None
        question = "rating" if survey == "csat" else "score"
        answers: dict[str, object] = {question: score}
        if product:
            answers["product"] = product
        s.add(
            SurveyResponse(
                survey_id=survey_id,
                answers=answers,
                ticket_id=s.exec(select(Ticket.id).where(Ticket.key == key)).one() if key else None,
                expert_id=get_user(s, expert).id if expert else None,
                created_at=utcnow() - timedelta(days=days_ago),
            )
        )


def build_insights_desk(engine: Engine) -> None:
    """Small desk (teams 360, Stats iQ, Solo) with worked tickets and answers:

    - 360: maya (wait 10m, resolved 30m, CSAT 5), omar (20m, 50m, CSAT 4), omar (30m, 70m,
      CSAT 2): CSAT 66.7% of 3; NPS one promoter (10): +100.
    - Stats iQ: kenji today (5m, 25m, CSAT 1) and 20 days ago (15m, 45m, CSAT 5): CSAT 50% of 2
      (0% of 1 in the last 7 days); NPS one detractor (3): -100.
    - Solo: nothing.
    """
    build_small_desk(engine)
    add_score_surveys(engine)
    worked = [
        ("360", "maya", 10, 30, 5, 0),
        ("360", "omar", 20, 50, 4, 0),
        ("360", "omar", 30, 70, 2, 0),
        ("Stats iQ", "kenji", 5, 25, 1, 0),
        ("Stats iQ", "kenji", 15, 45, 5, 20),
    ]
    for team, expert, wait, resolve, rating, days_ago in worked:
        key = worked_ticket(engine, team, expert, wait_minutes=wait, resolve_minutes=resolve,
                            days_ago=days_ago)  # fmt: skip
        answer(engine, "csat", rating, key=key, expert=expert, days_ago=days_ago)
    answer(engine, "nps", 10, product="360")
    answer(engine, "nps", 3, product="Stats iQ")


def by_team(rows: list[TeamTimes]) -> dict[str, TeamTimes]:
    return {row.team: row for row in rows}


def minutes(durations: Durations) -> tuple[int, float | None, float | None]:
    def rounded(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / MINUTE, 3)

    return durations.count, rounded(durations.median), rounded(durations.p90)


# -- wait to pull and time to resolve ----------------------------------------------------------


def test_wait_and_resolve_times_per_team_median_and_p90(engine: Engine) -> None:
    build_small_desk(engine)
    for wait in (40, 10, 30, 20):  # an even count: the median is the mean of the middle two
        worked_ticket(engine, "360", "omar", wait_minutes=wait, resolve_minutes=wait * 3)
    for wait in (100, 5, 15):
        worked_ticket(engine, "Stats iQ", "kenji", wait_minutes=wait)  # pulled, not resolved
    make_ticket(engine, "Still waiting", "360")  # never pulled: no wait yet
    make_ticket(engine, "Handed over", "Solo", owner="kenji")  # owned at once: not pulled

    with read_session(engine) as session:
        rows = team_times(session)

    assert [row.team for row in rows] == ["360", "Solo", "Stats iQ", "All"]
    times = by_team(rows)
    assert minutes(times["360"].wait) == (4, 25.0, 40.0)
    assert minutes(times["360"].resolve) == (4, 75.0, 120.0)
    assert minutes(times["Stats iQ"].wait) == (3, 15.0, 100.0)
    assert times["Stats iQ"].resolve == Durations()  # count 0, no median
    assert times["Solo"] == TeamTimes("Solo", Durations(), Durations())
    # All: 5 10 15 20 30 40 100 -> the 4th; p90 is the nearest rank (7th of 7).
    assert minutes(times["All"].wait) == (7, 20.0, 100.0)
    assert minutes(times["All"].resolve) == (4, 75.0, 120.0)


def test_p90_is_the_nearest_rank_and_a_reopened_ticket_is_not_resolved(engine: Engine) -> None:
    build_small_desk(engine)
    keys = [
        worked_ticket(engine, "360", "maya", wait_minutes=w, resolve_minutes=w + 60)
        for w in range(1, 12)
    ]
    with unit_of_work(engine) as s:  # reopened: its resolve time no longer counts
        update_ticket(s, actor=get_user(s, "maya"), key=keys[-1], comment="Not fixed after all",
                      changes={"status": "open"})  # fmt: skip

    with read_session(engine) as session:
        team = by_team(team_times(session))["360"]

    # Waits 1..11: median the 6th; p90 the 10th (10 * 10 >= 11 * 9), not the 11th.
    assert minutes(team.wait) == (11, 6.0, 10.0)
    # Resolves 61..70: median between the 5th and 6th; p90 the 9th.
    assert minutes(team.resolve) == (10, 65.5, 69.0)


def test_only_the_first_pull_counts(engine: Engine) -> None:
    build_small_desk(engine)
    key = worked_ticket(engine, "360", "maya", wait_minutes=12)
    with transaction(engine) as s:  # put back and pulled again later by someone else
        ticket_id = s.exec(select(Ticket.id).where(Ticket.key == key)).one()
        created = s.exec(select(Ticket.created_at).where(Ticket.id == ticket_id)).one()
        again = record_event(s, kind=PULLED_KIND, actor=get_user(s, "omar"), ticket_id=ticket_id,
                             triggers_workflows=False)  # fmt: skip
        s.execute(
            update(Event)
            .where(col(Event.id) == again)
            .values(created_at=created + timedelta(hours=3))
        )

    with read_session(engine) as session:
        assert minutes(by_team(team_times(session))["360"].wait) == (1, 12.0, 12.0)


def test_since_counts_only_tickets_created_since(engine: Engine) -> None:
    build_insights_desk(engine)
    week_ago = utcnow() - timedelta(days=7)

    with read_session(engine) as session:
        everything = by_team(team_times(session))
        recent = by_team(team_times(session, since=week_ago))
        future = by_team(team_times(session, since=utcnow() + timedelta(days=1)))
        scores = {row.group: row for row in csat_report(session, by="team", since=week_ago)}

    assert minutes(everything["Stats iQ"].wait) == (2, 10.0, 15.0)
    assert minutes(everything["Stats iQ"].resolve) == (2, 35.0, 45.0)
    assert minutes(recent["Stats iQ"].wait) == (1, 5.0, 5.0)
    assert minutes(recent["Stats iQ"].resolve) == (1, 25.0, 25.0)
    assert minutes(recent["360"].resolve) == (3, 50.0, 70.0)
    assert minutes(recent["All"].wait) == (4, 15.0, 30.0)
    assert all(row.wait.count == row.resolve.count == 0 for row in future.values())
    # The CSAT answers of the same period: the old Stats iQ answer (5) is left out.
    assert (scores["Stats iQ"].csat_answers, scores["Stats iQ"].csat_percent) == (1, 0.0)


def test_empty_desk_has_every_team_with_no_figures(engine: Engine) -> None:
    build_small_desk(engine)
    with read_session(engine) as session:
        rows = team_times(session)
        scores = csat_report(session, by="team")
    assert [(row.team, row.wait.count, row.resolve.median) for row in rows] == [
        ("360", 0, None), ("Solo", 0, None), ("Stats iQ", 0, None), ("All", 0, None),
    ]  # fmt: skip
    assert [(row.group, row.csat_answers, row.nps_answers) for row in scores] == [("All", 0, 0)]


def test_csat_by_team_and_expert_on_the_insights_desk(engine: Engine) -> None:
    build_insights_desk(engine)
    with read_session(engine) as session:
        teams = {row.group: row for row in csat_report(session, by="team")}
        experts = {row.group: row for row in csat_report(session, by="expert")}
    assert list(teams) == ["360", "Stats iQ", "All"]
    assert (round(teams["360"].csat_percent or 0, 1), teams["360"].csat_answers) == (66.7, 3)
    assert (teams["360"].nps, teams["Stats iQ"].nps) == (100.0, -100.0)
    assert (teams["Stats iQ"].csat_percent, teams["Stats iQ"].csat_answers) == (50.0, 2)
    assert list(experts) == ["kenji", "maya", "omar", "(none)", "All"]
    assert (experts["maya"].csat_percent, experts["omar"].csat_percent) == (100.0, 50.0)
    assert (experts["(none)"].nps_answers, experts["(none)"].csat_answers) == (2, 0)


def test_times_are_read_with_a_few_statements(engine: Engine) -> None:
    """The figures come from aggregates: the number of statements does not grow with the
    number of tickets."""
    build_small_desk(engine)
    counts = []
    for extra in (1, 6):
        for _ in range(extra):
            worked_ticket(engine, "360", "maya", wait_minutes=3, resolve_minutes=9)
        _times, statements = statements_of(engine, lambda session: team_times(session))
        counts.append(selects(statements))
    assert counts[0] == counts[1] <= 5, counts


# -- the bar chart's cells ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "low", "width", "expected"),
    [
        (100.0, 0.0, 40, (0, "█" * 40)),
        (50.0, 0.0, 40, (0, "█" * 20)),
        (0.0, 0.0, 40, (0, "")),
        (66.7, 0.0, 40, (0, "█" * 26 + "▋")),  # 26.68 cells: 26 and 5 eighths
        (150.0, 0.0, 10, (0, "█" * 10)),  # never past the track
        (100.0, -100.0, 40, (20, "█" * 20)),  # NPS +100: right from the middle
        (-50.0, -100.0, 40, (10, "█" * 10)),  # NPS -50: left from the middle
        (-12.5, -100.0, 40, (17, "▐" + "█" * 2)),  # 2.5 cells, a half cell at the far end
    ],
)
def test_bar_cells(value: float, low: float, width: int, expected: tuple[int, str]) -> None:
    assert bar_cells(value, low=low, high=100.0, width=width) == expected


def test_a_wait_across_midnight_is_minutes(engine: Engine) -> None:
    """A wait measured across midnight UTC is minutes, not a day off."""
    build_small_desk(engine)
    key = worked_ticket(engine, "360", "maya", wait_minutes=1)
    late = datetime.fromisoformat("2026-01-01T23:55:00+00:00")
    with transaction(engine) as s:
        ticket_id = s.exec(select(Ticket.id).where(Ticket.key == key)).one()
        s.execute(update(Ticket).where(col(Ticket.id) == ticket_id).values(created_at=late))
        s.execute(
            update(Event)
            .where(col(Event.ticket_id) == ticket_id, col(Event.kind) == PULLED_KIND)
            .values(created_at=late + timedelta(minutes=10))
        )
    with read_session(engine) as session:
        assert minutes(by_team(team_times(session))["360"].wait) == (1, 10.0, 10.0)
