"""Proactive campaigns: ``cxdesk campaign create`` on SQLite and PostgreSQL.

A campaign's tickets are created in one transaction: 1,000 all at once with their workflows,
1,001 refused with nothing written, and a failure on one ticket (here a ``ticket.created``
workflow that cannot route one contact) leaves no ticket at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cxdesk.engine.workflows import save_workflow
from cxdesk.store.db import transaction
from cxdesk.store.models import Campaign, Contact, OutboxMessage, SavedView, Ticket, TicketData
from tests.cli_helpers import Cli, assert_one_error_line, table_counts
from tests.desk import build_small_desk
from tests.loop_helpers import tagged_tickets, team_of, ticket_count, write_csv


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def add_contacts(engine: Engine, count: int, *, plan: str = "enterprise", start: int = 0) -> None:
    with transaction(engine) as session:
        session.add_all(
            Contact(
                name=f"Customer {n:05d}",
                email=f"customer{n:05d}@example.com",
                attributes={"plan": plan, "route": "360"},
            )
            for n in range(start, start + count)
        )


def add_route_copy_workflow(engine: Engine) -> None:
    """A ``ticket.created`` workflow for campaign tickets: a copy for the team in the contact's
    ``route`` attribute (it fails, and with it the whole campaign, when there is no such team)."""
    with transaction(engine) as session:
        save_workflow(
            session,
            actor=None,
            name="Campaign: route a copy",
            event="ticket.created",
            conditions={"all": [{"field": "tck://Field/source", "op": "is", "value": "campaign"}]},
            tasks=[{"type": "create_ticket", "team": "${tck://kv/route}", "title": "Copy"}],
        )


def add_welcome_workflow(engine: Engine) -> None:
    """A ``ticket.created`` workflow for campaign tickets: email the customer."""
    with transaction(engine) as session:
        save_workflow(
            session,
            actor=None,
            name="Campaign: welcome",
            event="ticket.created",
            conditions={"all": [{"field": "tck://Field/source", "op": "is", "value": "campaign"}]},
            tasks=[
                {
                    "type": "send_email",
                    "to": "${tck://Field/customerEmail}",
                    "subject": "${tck://Field/title} (${tck://Field/key})",
                    "body": "Hello ${tck://Field/customerName}, plan ${tck://kv/plan}.",
                }
            ],
        )


CREATE = [
    "campaign", "create", "Renewal 2027",
    "--filter", "plan=enterprise",
    "--subject", "Your renewal is coming up",
    "--description", "Offer the 2027 renewal call.",
    "--team", "360",
    "--status", "open",
    "--assignee", "omar",
]  # fmt: skip


def test_a_campaign_of_1000_creates_every_ticket_tagged_with_its_workflows_and_a_view(
    cli: Cli, desk: Engine
) -> None:
    add_contacts(desk, 1000)
    add_contacts(desk, 3, plan="free", start=5000)  # not picked by the filter
    add_welcome_workflow(desk)

    result = cli(*CREATE)

    assert result.exit_code == 0, str(result)
    assert "created 1000 ticket(s)" in result.stdout
    tickets = tagged_tickets(desk, "Renewal 2027")
    assert len(tickets) == ticket_count(desk) == 1000
    emails = sorted(t.customer_email for t in tickets)
    assert emails == [f"customer{n:05d}@example.com" for n in range(1000)]
    assert {(t.title, t.status, t.source, t.channel) for t in tickets} == {
        ("Your renewal is coming up", "open", "campaign", "email")
    }
    assert {team_of(desk, t) for t in tickets} == {"360"}
    with Session(desk) as session:
        omar = session.exec(select(Campaign)).one()
        assert omar.team_id == tickets[0].team_id
        assert {t.owner_id for t in tickets} == {omar.assignee_id}
        data = session.exec(
            select(TicketData)
            .where(TicketData.ticket_id == tickets[0].id)
            .order_by(col(TicketData.position))
        ).all()
        assert [(d.name, d.value) for d in data] == [
            ("Campaign", "Renewal 2027"),
            ("Description", "Offer the 2027 renewal call."),
            ("plan", "enterprise"),
            ("route", "360"),
        ]
        # ticket.created workflows ran for every ticket, in the same transaction.
        outbox = session.exec(select(OutboxMessage)).all()
        assert len(outbox) == 1000
        assert {m.ticket_id for m in outbox} == {t.id for t in tickets}
        assert outbox[0].body.endswith("plan enterprise.")
        view = session.exec(select(SavedView)).one()
        assert (view.name, view.owner_id) == ("Campaign: Renewal 2027", None)
        assert view.filters["tag"] == "Renewal 2027" and view.filters["last_days"] is None

    shown = cli("ticket", "show", tickets[0].key or "", "--json")
    assert shown.exit_code == 0, str(shown)
    assert json.loads(shown.stdout)["tags"] == ["Renewal 2027"]
    listed = cli("tickets", "list", "--limit", "1", "--json")
    assert json.loads(listed.stdout)[0]["tags"] == ["Renewal 2027"]
    campaigns = cli("campaign", "list")
    assert "Renewal 2027" in campaigns.stdout and "1000" in campaigns.stdout


def test_a_campaign_of_1001_is_refused_with_the_advice_to_split_and_nothing_written(
    cli: Cli, desk: Engine
) -> None:
    add_contacts(desk, 1001)
    before = table_counts(desk)

    line = assert_one_error_line(cli(*CREATE), "1,001 contacts match", "at most 1,000", "split")
    assert "plan=enterprise" in line
    preview = cli(*CREATE, "--preview")
    assert_one_error_line(preview, "1,001 contacts match")
    assert table_counts(desk) == before


def test_a_failure_on_one_ticket_leaves_no_ticket_at_all(cli: Cli, desk: Engine) -> None:
    add_contacts(desk, 20)
    with transaction(desk) as session:  # the 21st contact routes to a team that is not there
        session.add(
            Contact(
                name="Misrouted",
                email="customer00019x@example.com",
                attributes={"plan": "enterprise", "route": "Nowhere"},
            )
        )
    add_contacts(desk, 20, start=20)
    add_route_copy_workflow(desk)
    before = table_counts(desk)

    assert_one_error_line(cli(*CREATE), "No team named 'Nowhere'")

    assert table_counts(desk) == before
    assert ticket_count(desk) == 0


def test_preview_prints_the_count_and_first_tickets_and_writes_nothing(
    cli: Cli, desk: Engine
) -> None:
    add_contacts(desk, 12)
    before = table_counts(desk)

    result = cli(*CREATE, "--preview")

    assert result.exit_code == 0, str(result)
    assert "would create 12 ticket(s) for team 360" in result.stdout
    assert "customer00000@example.com" in result.stdout
    assert "customer00004@example.com" in result.stdout
    assert "customer00005@example.com" not in result.stdout  # the first 5 only
    assert table_counts(desk) == before


def test_from_imported_contacts_to_a_500_ticket_campaign(
    cli: Cli, desk: Engine, tmp_path: Path
) -> None:
    rows = [
        [f"Customer {n}", f"c{n}@example.com", "", "pro" if n % 2 else "free", f"2027-0{n % 9 + 1}"]
        for n in range(1000)
    ]
    file = write_csv(tmp_path / "contacts.csv", ["name", "email", "phone", "plan", "renewal"], rows)
    assert cli("contact", "import", str(file)).exit_code == 0

    result = cli(
        "campaign", "create", "Pro upsell", "--filter", "plan=pro", "--subject", "Upgrade?",
        "--team", "Stats iQ",
    )  # fmt: skip

    assert result.exit_code == 0, str(result)
    assert "created 500 ticket(s)" in result.stdout
    assert len(tagged_tickets(desk, "Pro upsell")) == 500
    with Session(desk) as session:
        assert {t.owner_id for t in session.exec(select(Ticket)).all()} == {None}  # waiting


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--team", "Nope"], "No team named 'Nope'"),
        (["--assignee", "kenji"], "kenji is not on team 360"),
        (["--status", "later"], "later"),
        (["--filter", "plan=none-such"], "No contacts match"),
    ],
)
def test_mistakes_are_one_line_and_change_nothing(
    cli: Cli, desk: Engine, extra: list[str], fragment: str
) -> None:
    add_contacts(desk, 3)
    before = table_counts(desk)
    args = ["campaign", "create", "C", "--filter", "plan=enterprise", "--subject", "S",
            "--team", "360", *extra]  # fmt: skip
    if extra[0] == "--filter":
        args = ["campaign", "create", "C", *extra, "--subject", "S", "--team", "360"]
    assert_one_error_line(cli(*args), fragment)
    assert table_counts(desk) == before


def test_a_campaign_name_is_unique(cli: Cli, desk: Engine) -> None:
    add_contacts(desk, 2)
    assert cli(*CREATE).exit_code == 0
    before = table_counts(desk)
    assert_one_error_line(cli(*CREATE), "already exists")
    no_filter = cli("campaign", "create", "Other", "--subject", "S", "--team", "360")
    assert_one_error_line(no_filter, "filter: at least one is required")
    assert table_counts(desk) == before
