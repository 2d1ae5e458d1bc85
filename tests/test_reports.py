"""Answers in, results out, on the demo desk (SQLite and PostgreSQL):
``cxdesk responses import`` (NPS detractors open tickets in the right queue) and
``cxdesk report csat``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.store.models import OutboxMessage, Survey, SurveyResponse, Ticket
from cxdesk.store.survey_links import answer_by_link
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.loop_helpers import team_of, write_csv


@pytest.fixture
def demo(cli: Cli, engine: Engine) -> Engine:
    result = cli("demo")
    assert result.exit_code == 0, str(result)
    return engine


def responses(engine: Engine, survey: str) -> list[SurveyResponse]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(SurveyResponse)
                .join(Survey, col(Survey.id) == col(SurveyResponse.survey_id))
                .where(Survey.name == survey)
                .order_by(col(SurveyResponse.id))
            ).all()
        )


def tickets_after(engine: Engine, ticket_id: int) -> list[Ticket]:
    with Session(engine) as session:
        found = session.exec(
            select(Ticket).where(col(Ticket.id) > ticket_id).order_by(col(Ticket.id))
        ).all()
        for ticket in found:
            session.expunge(ticket)
        return list(found)


def last_ticket_id(engine: Engine) -> int:
    with Session(engine) as session:
        return max(session.exec(select(Ticket.id)).all(), default=0) or 0


NPS_HEADER = ["email", "score", "product", "comment"]


def test_nps_import_detractors_0_to_6_open_tickets_in_the_products_queue(
    cli: Cli, demo: Engine, tmp_path: Path
) -> None:
    before = last_ticket_id(demo)
    file = write_csv(
        tmp_path / "nps.csv",
        NPS_HEADER,
        [
            ["ada@example.com", "3", "Stats iQ", "Regression output still wrong"],
            ["bo@example.com", "9", "360", "Great help"],
            ["cy@example.com", "6", "API", ""],
            ["di@example.com", "7", "API", "Fine"],
            ["ed@example.com", "11", "API", "Off the scale"],
            ["not-an-email", "2", "360", ""],
            ["fay@example.com", "0", "Nope", "Unknown product"],
            ["gus@example.com", "", "360", "No score"],
            ["hal@example.com", "10", "CX Dashboards", "Zoë & Ann O'Neil say thanks"],
        ],
    )

    result = cli("responses", "import", str(file), "--survey", "nps")

    assert result.exit_code == 1, str(result)
    assert "Traceback" not in result.output
    assert "5 responses imported, 4 rows refused" in result.stdout
    refused = [line.strip() for line in result.error_lines]
    assert refused[0] == "line 6: score: must be between 0 and 10"
    assert refused[1].startswith("line 7: email: not a valid email address")
    assert refused[2].startswith("line 8: product: must be one of: 360, Stats iQ")
    assert refused[3] == "line 9: score: is required"
    stored = responses(demo, "nps")
    assert [r.answers["email"] for r in stored] == [
        "ada@example.com",
        "bo@example.com",
        "cy@example.com",
        "di@example.com",
        "hal@example.com",
    ]
    assert stored[0].answers["score"] == 3

    detractors = tickets_after(demo, before)
    assert [(t.customer_email, team_of(demo, t)) for t in detractors] == [
        ("ada@example.com", "Stats iQ"),
        ("cy@example.com", "API"),
    ]
    ada = detractors[0]
    assert ada.customer_comment == "Regression output still wrong"
    assert (ada.priority, ada.status, ada.source, ada.owner_id) == ("high", "new", "survey", None)
    assert ada.response_id == stored[0].id
    assert ada.title == "NPS detractor (3/10) about Stats iQ: ada@example.com"
    shown = json.loads(cli("ticket", "show", ada.key or "", "--json").stdout)
    assert shown["tags"] == ["nps-detractor"]
    assert shown["data"]["Score"] == "3" and shown["data"]["Email"] == "ada@example.com"
    # The detractor waits in the Stats iQ queue: an expert of that team pulls it.
    pulled = cli("ticket", "pull", "Stats iQ", "--as", "kenji")
    assert pulled.exit_code == 0, str(pulled)


def test_responses_import_refuses_a_file_that_does_not_fit_the_survey(
    cli: Cli, demo: Engine, tmp_path: Path
) -> None:
    before = table_counts(demo)
    unknown = write_csv(tmp_path / "a.csv", [*NPS_HEADER, "colour"], [["a@x.io", 1, "API", "", ""]])
    assert_one_error_line(
        cli("responses", "import", str(unknown), "--survey", "nps"),
        "'colour'",
        "not questions of survey 'nps'",
    )
    no_score = write_csv(tmp_path / "b.csv", ["email", "product"], [["a@x.io", "API"]])
    assert_one_error_line(
        cli("responses", "import", str(no_score), "--survey", "nps"), "requires column(s) score"
    )
    assert_one_error_line(
        cli("responses", "import", str(no_score), "--survey", "nope"), "No survey named 'nope'"
    )
    assert table_counts(demo) == before


# -- CSAT answers and the report ---------------------------------------------------------------


def csat_link(engine: Engine, key: str) -> str:
    """The link in the CSAT email the resolve of ``key`` queued."""
    with Session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        messages = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.ticket_id == ticket.id, col(OutboxMessage.subject).contains("do?")
            )
        ).all()
    assert len(messages) == 1, [m.subject for m in messages]
    found = re.search(r"http://\S+", messages[0].body)
    assert found, messages[0].body
    return found.group(0)


def answer(engine: Engine, link: str, **answers: object) -> None:
    ref = parse_qs(urlsplit(link).query)["ref"][0]
    with unit_of_work(engine) as session:
        answer_by_link(session, ref=ref, answers=answers)


def resolve(cli: Cli, queue: str, expert: str) -> str:
    key = cli("ticket", "pull", queue, "--as", expert).stdout.strip()
    done = cli("ticket", "update", key, "--as", expert, "--status", "resolved", "--comment", "Done")
    assert done.exit_code == 0, str(done)
    return key


def report(cli: Cli, *args: str) -> dict[str, dict[str, object]]:
    result = cli("report", "csat", *args, "--json")
    assert result.exit_code == 0, str(result)
    return {row["group"]: row for row in json.loads(result.stdout)}


def test_report_csat_and_nps_overall_by_expert_and_by_team(
    cli: Cli, demo: Engine, tmp_path: Path
) -> None:
    zoe, hiroshi, sam = (
        resolve(cli, "360", "maya"),
        resolve(cli, "Stats iQ", "kenji"),
        resolve(cli, "API", "omar"),
    )
    link = csat_link(demo, zoe)
    assert link.startswith("http://127.0.0.1:8765/csat?SupportRep=Maya%20Chen&")
    assert "CustomerName=Zo%C3%AB%20Ann%20O%27Neil" in link  # piped values percent-encoded
    answer(demo, link, rating=5, comment="Maya fixed it")
    answer(demo, csat_link(demo, hiroshi), rating=2)
    answer(demo, csat_link(demo, sam), rating="4")
    nps = write_csv(
        tmp_path / "nps.csv",
        NPS_HEADER,
        [["a@x.io", 10, "360", ""], ["b@x.io", 3, "Stats iQ", "slow"], ["c@x.io", 8, "API", ""]],
    )
    assert cli("responses", "import", str(nps), "--survey", "nps").exit_code == 0

    overall = report(cli)
    assert list(overall) == ["All"]
    assert overall["All"]["csat_answers"] == 3 and overall["All"]["csat_satisfied"] == 2
    assert round(overall["All"]["csat_percent"], 1) == 66.7
    assert (overall["All"]["nps_answers"], overall["All"]["nps"]) == (3, 0.0)

    experts = report(cli, "--by", "expert")
    assert list(experts) == ["kenji", "maya", "omar", "(none)", "All"]
    assert (experts["maya"]["csat_percent"], experts["maya"]["csat_answers"]) == (100.0, 1)
    assert (experts["kenji"]["csat_percent"], experts["kenji"]["csat_average"]) == (0.0, 2.0)
    assert (experts["(none)"]["nps_answers"], experts["(none)"]["csat_answers"]) == (3, 0)

    teams = report(cli, "--by", "team")
    assert list(teams) == ["360", "API", "Stats iQ", "All"]
    assert (teams["360"]["csat_percent"], teams["360"]["nps"]) == (100.0, 100.0)
    assert (teams["Stats iQ"]["csat_percent"], teams["Stats iQ"]["nps"]) == (0.0, -100.0)
    assert (teams["API"]["nps"], teams["API"]["passives"]) == (0.0, 1)

    table = cli("report", "csat", "--by", "team")
    assert table.exit_code == 0, str(table)
    assert re.search(r"Stats iQ\s.*0\.0%\s.*1\s.*2\.0\s.*-100\.0", table.stdout), table.stdout

    tomorrow = (datetime.now() + timedelta(days=1)).date().isoformat()
    later = report(cli, "--since", tomorrow)
    assert (later["All"]["csat_answers"], later["All"]["nps_answers"]) == (0, 0)
    assert report(cli, "--since", "2000-01-01")["All"]["csat_answers"] == 3

    # The answer is on the ticket's log, with the expert it was about.
    shown = json.loads(cli("ticket", "show", zoe, "--json").stdout)
    answered = [e for e in shown["log"] if e["kind"] == "survey.answered"]
    assert [(e["to"], e["detail"]) for e in answered] == [("rating=5", "Maya fixed it")]
    assert [r.expert_id is not None for r in responses(demo, "csat")] == [True, True, True]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [(["--by", "product"], "--by must be one of expert, team"), (["--since", "soon"], "--since")],
)
def test_report_mistakes_are_one_line(
    cli: Cli, demo: Engine, args: list[str], fragment: str
) -> None:
    assert_one_error_line(cli("report", "csat", *args), fragment)


def test_imported_csat_answers_with_a_ticket_column_count_for_its_expert(
    cli: Cli, demo: Engine, tmp_path: Path
) -> None:
    maya_ticket, omar_ticket = resolve(cli, "360", "maya"), resolve(cli, "API", "omar")
    file = write_csv(
        tmp_path / "csat.csv",
        ["Ticket", "rating", "comment"],
        [
            [maya_ticket, 5, "Great"],  # line 2
            ["EXP-9999", 4, ""],  # line 3: no such ticket
            [omar_ticket.lower(), 2, ""],  # line 4: keys match whatever their case
            [maya_ticket, 1, "again"],  # line 5: the ticket was answered already
            ["", 4, "no ticket"],  # line 6: kept, linked to nothing
        ],
    )
    result = cli("responses", "import", str(file), "--survey", "csat")
    assert result.exit_code == 1, str(result)
    assert "line 3" in result.output and "No ticket 'EXP-9999'" in result.output
    assert "line 5" in result.output and "already answered" in result.output

    with Session(demo) as session:
        keys = dict(session.exec(select(Ticket.id, Ticket.key)).all())
    stored = [(keys.get(r.ticket_id), r.answers["rating"]) for r in responses(demo, "csat")]
    assert stored == [(maya_ticket, 5), (omar_ticket, 2), (None, 4)]
    experts = report(cli, "--by", "expert")
    assert (experts["maya"]["csat_answers"], experts["maya"]["csat_percent"]) == (1, 100.0)
    assert (experts["omar"]["csat_answers"], experts["omar"]["csat_percent"]) == (1, 0.0)
    assert experts["(none)"]["csat_answers"] == 1
    shown = json.loads(cli("ticket", "show", maya_ticket, "--json").stdout)
    answered = [e for e in shown["log"] if e["kind"] == "survey.answered"]
    assert [(e["to"], e["detail"]) for e in answered] == [("rating=5", "Great")]
