"""The SLA report (``store.sla_report``, ``cxdesk report sla``) on a known set of tickets, on
SQLite and PostgreSQL: attainment, met and breached counts, median and p90 of the time to each
target, overall, by team and by expert, since a time; and the CLI's one line for a bad
``--since`` or ``--by``.

``build_sla_desk`` (also used by the Insights panel's test) gives tickets SLA times directly
(``tests.sla_helpers``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.models import utcnow
from cxdesk.store.reports import parse_since
from cxdesk.store.sla_report import SlaRow, sla_report
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.desk import build_small_desk
from tests.sla_helpers import MINUTE, give_sla
from tests.statement_helpers import selects, statements_of
from tests.test_views import make_ticket


def build_sla_desk(engine: Engine) -> datetime:
    """Six tickets (``now`` returned: the report's time):

    ======== ======= ======== ============================ ====================================
    ticket   team    owner    first response (due 10m)     resolution (due 45m)
    ======== ======= ======== ============================ ====================================
    A        360     maya     met, 5m                      met, 30m
    B        360     omar     breached, 12m                breached (late), 60m
    C        360     omar     met, 8m                      breached (running, past due)
    D        Stats   (none)   paused at 5m: neither         paused: neither
    E        Stats   (none)   met, 2m (created 5 min ago)  running on time: neither
    F        Stats   (none)   no policy: not counted
    ======== ======= ======== ============================ ====================================
    A-D were created ten days ago, E five minutes ago.
    """
    build_small_desk(engine)
    now = utcnow()
    old, new = now - timedelta(days=10), now - 5 * MINUTE
    with read_session(engine) as session:
        maya, omar = (get_user(session, name).id for name in ("maya", "omar"))

    def ticket(team: str, created: datetime, **columns: object) -> None:
        key = make_ticket(engine, "Help", team, customer_name="Ada")
        give_sla(engine, key, created, **columns)

    # fmt: off
    ticket("360", old, owner_id=maya, first_responded_at=old + 5 * MINUTE,
           resolved_at=old + 30 * MINUTE, status="resolved")
    ticket("360", old, owner_id=omar, first_responded_at=old + 12 * MINUTE,
           resolved_at=old + 60 * MINUTE, status="resolved")
    ticket("360", old, owner_id=omar, first_responded_at=old + 8 * MINUTE)
    ticket("Stats iQ", old, sla_paused_at=old + 5 * MINUTE)
    ticket("Stats iQ", new, first_responded_at=new + 2 * MINUTE)
    make_ticket(engine, "No policy", "Stats iQ", customer_name="Bo")
    # fmt: on
    return now


def figures(row: SlaRow) -> dict[str, tuple[object, ...]]:
    """Per target: (met, breached, attainment, done, median minutes, p90 minutes)."""

    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 2)

    return {
        target: (
            f.met,
            f.breached,
            None if f.attainment is None else round(f.attainment, 1),
            f.times.count,
            minutes(f.times.median),
            minutes(f.times.p90),
        )
        for target, f in row.targets.items()
    }


NOTHING = (0, 0, None, 0, None, None)


def test_attainment_breaches_and_times_overall_by_team_and_by_expert(engine: Engine) -> None:
    now = build_sla_desk(engine)
    with read_session(engine) as session:
        overall = sla_report(session, now=now)
        by_team = {row.group: row for row in sla_report(session, now=now, by="team")}
        by_expert = {row.group: row for row in sla_report(session, now=now, by="expert")}
        recent = sla_report(session, now=now, since=now - timedelta(days=1))
    assert [row.group for row in overall] == ["All"]
    assert figures(overall[0]) == {
        "first_response": (3, 1, 75.0, 4, 6.5, 12.0),  # 2, 5, 8, 12 minutes
        "next_response": NOTHING,
        "resolution": (1, 2, 33.3, 2, 45.0, 60.0),  # 30, 60 minutes; C is late and running
    }
    assert list(by_team) == ["360", "Stats iQ", "All"]
    assert figures(by_team["360"])["first_response"] == (2, 1, 66.7, 3, 8.0, 12.0)
    assert figures(by_team["360"])["resolution"] == (1, 2, 33.3, 2, 45.0, 60.0)
    assert figures(by_team["Stats iQ"]) == {
        "first_response": (1, 0, 100.0, 1, 2.0, 2.0),
        "next_response": NOTHING,
        "resolution": NOTHING,  # D paused, E on time
    }
    assert figures(by_team["All"]) == figures(overall[0])
    assert list(by_expert) == ["maya", "omar", "(none)", "All"]
    assert figures(by_expert["omar"])["first_response"] == (1, 1, 50.0, 2, 10.0, 12.0)
    assert figures(by_expert["maya"])["resolution"] == (1, 0, 100.0, 1, 30.0, 30.0)
    assert figures(recent[0])["first_response"] == (1, 0, 100.0, 1, 2.0, 2.0)  # E only


def test_a_paused_ticket_counts_as_breached_when_it_was_due_before_the_pause(
    engine: Engine,
) -> None:
    build_small_desk(engine)
    now = utcnow()
    created = now - timedelta(hours=2)
    key = make_ticket(engine, "Help", "360", customer_name="Ada")
    give_sla(engine, key, created, resolution=None, sla_paused_at=created + 11 * MINUTE)
    with read_session(engine) as session:
        row = sla_report(session, now=now)[0]
    assert figures(row)["first_response"] == (0, 1, 0.0, 0, None, None)


def test_cli_report_sla_prints_the_table_and_json(cli: Cli, engine: Engine) -> None:
    build_sla_desk(engine)
    table = cli("report", "sla", "--by", "team")
    assert table.exit_code == 0, str(table)
    lines = [line for line in table.stdout.splitlines() if "│" in line]
    assert any("360" in line and "first response" in line and "66.7%" in line for line in lines)
    assert any("resolution" in line and "33.3%" in line and "1h 00m" in line for line in lines)
    rows = json.loads(cli("report", "sla", "--by", "expert", "--json").stdout)
    assert [row["group"] for row in rows] == ["maya", "omar", "(none)", "All"]
    assert rows[-1]["first_response"] == {
        "met": 3, "breached": 1, "attainment_percent": 75.0, "done": 4,
        "median_seconds": 390.0, "p90_seconds": 720.0,
    }  # fmt: skip
    recent = json.loads(cli("report", "sla", "--since", "1d", "--json").stdout)
    assert recent[-1]["first_response"]["met"] == 1


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (("--since", "yesterday"), ("--since", "'yesterday'", "YYYY-MM-DD", "7d")),
        (("--since", "7x"), ("--since", "'7x'")),
        (("--by", "queue"), ("--by must be one of expert, team", "'queue'")),
    ],
)
def test_cli_report_sla_refuses_a_bad_option_in_one_line(
    cli: Cli, engine: Engine, options: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    build_small_desk(engine)
    before = table_counts(engine)
    assert_one_error_line(cli("report", "sla", *options), *fragments)
    assert table_counts(engine) == before


def test_since_takes_a_date_or_a_period() -> None:
    now = datetime(2026, 12, 7, 12, 0).astimezone()
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since(" 24H ", now=now) == now - timedelta(hours=24)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1).astimezone()


def test_the_report_is_read_with_a_few_statements_whatever_the_number_of_tickets(
    engine: Engine,
) -> None:
    """Aggregates, not tickets: one statement per target for the counts and two for the times,
    and one for the names, however many tickets and teams there are."""
    now = build_sla_desk(engine)
    counts = []
    for extra in (0, 5):
        for _ in range(extra):
            key = make_ticket(engine, "More", "Solo", customer_name="Cy")
            give_sla(engine, key, now - timedelta(hours=3), first_responded_at=now)
        rows, statements = statements_of(
            engine, lambda session: sla_report(session, now=now, by="team")
        )
        counts.append(selects(statements))
    assert [row.group for row in rows] == ["360", "Solo", "Stats iQ", "All"]
    assert counts[0] == counts[1] <= 10, counts
