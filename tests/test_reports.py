"""Answers in, results out, on the demo desk (SQLite and PostgreSQL):
``cxdesk responses import`` (NPS detractors open tickets in the right queue) and
``cxdesk report csat``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cxdesk.store.models import Survey, SurveyResponse, Ticket
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.loop_helpers import desk_cli, team_of, write_csv


@pytest.fixture
def cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    yield from desk_cli(db_url, monkeypatch, capsys)


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
    assert "5 response(s) imported, 4 row(s) refused" in result.stdout
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
