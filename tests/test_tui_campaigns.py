"""The admin's campaigns screen driven by keys (App.run_test + Pilot), on SQLite and PostgreSQL.

An admin opens it from the palette, fills the form with keys, previews (count and first tickets,
nothing written), sends after confirming (tagged tickets, their ``ticket.created`` workflows and
the saved view, all at once); a taken name, a bad filter, more than 1,000 contacts and a failing
workflow are one line each and write nothing; an expert or a volunteer cannot open the screen.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Label, Select

from cxdesk.app import CxDeskApp
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.screens.campaigns import CampaignsScreen
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.store.campaigns import CampaignSpec, send_campaign
from cxdesk.store.contacts import parse_filters
from cxdesk.store.db import transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Campaign, Contact, OutboxMessage, SavedView
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from tests.cli_helpers import table_counts
from tests.desk import build_small_desk
from tests.loop_helpers import tagged_tickets, team_of, ticket_count
from tests.test_campaigns import add_contacts, add_route_copy_workflow, add_welcome_workflow
from tests.test_tui_views import desk, run_app
from tests.tui_helpers import choose, log_in, notified, palette, wait_until


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # nothing here sends mail or SMS


def outcome(app: CxDeskApp) -> str:
    return str(app.screen.query_one("#outcome", Label).render())


async def open_campaigns(app: CxDeskApp, pilot: Pilot[Any]) -> CampaignsScreen:
    """Log in as the admin and open the screen from the palette, its lists loaded."""
    await log_in(app, pilot)
    await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
    await palette(pilot, "Campaigns")
    await wait_until(pilot, lambda: isinstance(app.screen, CampaignsScreen), "the screen")
    screen = app.screen
    assert isinstance(screen, CampaignsScreen)
    await wait_until(
        pilot, lambda: len(screen.query_one("#team", Select)._options) > 1, "the teams"
    )
    await wait_until(pilot, lambda: app.focused is screen.query_one("#name"), "the name field")
    return screen


async def fill_form(
    pilot: Pilot[Any],
    *,
    name: str,
    filters: str,
    team: str = "360",
    assignee: str = "",
    subject: str = "Your renewal is coming up",
    description: str = "",
    status: str = "",
) -> None:
    """Type the form from its first field (the name) to its last (the status) with Tab."""
    await pilot.press(*name, "tab", *filters, "tab")
    await choose(pilot, team)
    await pilot.press("tab")
    if assignee:
        await choose(pilot, assignee)
    await pilot.press("tab", *subject, "tab", *description, "tab")
    if status:
        await choose(pilot, status)


def test_preview_writes_nothing_then_send_creates_the_tagged_tickets_and_view(
    engine: Engine,
) -> None:
    build_small_desk(engine)
    add_contacts(engine, 12)
    add_contacts(engine, 3, plan="free", start=500)  # not picked by the filter
    add_welcome_workflow(engine)
    counts: dict[str, dict[str, int]] = {}

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_campaigns(app, pilot)
        counts["before"] = table_counts(engine)
        await fill_form(
            pilot,
            name="Renewal 2027",
            filters="plan=enterprise, route=360",
            assignee="omar",
            description="Offer the call.",
            status="open",
        )
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "Would create" in outcome(app), "the preview")
        assert "Would create 12 tickets for team 360" in outcome(app)
        assert "status open, owner omar" in outcome(app)
        preview = screen.query_one("#preview", DataTable)
        assert preview.row_count == 5  # the first five
        assert preview.get_row_at(0) == [
            "Customer 00000", "customer00000@example.com", "Your renewal is coming up"
        ]  # fmt: skip
        assert table_counts(engine) == counts["before"]
        # Send, but say no: still nothing written.
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "creates 12 tickets" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: outcome(app) == "Not sent.", "the cancel")
        assert table_counts(engine) == counts["before"]
        # Send and confirm.
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("enter")
        sent = "Created 12 tickets; saved view 'Campaign: Renewal 2027'"
        await wait_until(pilot, lambda: notified(app, sent), "the send")
        campaigns = screen.query_one("#campaigns", DataTable)
        await wait_until(pilot, lambda: campaigns.row_count == 1, "the campaign in the list")
        assert campaigns.get_row_at(0)[:5] == [
            "Renewal 2027", "Your renewal is coming up", "360", "open", "12"
        ]  # fmt: skip

    run_app(engine, desk("admin"), script)
    tickets = tagged_tickets(engine, "Renewal 2027")
    assert len(tickets) == ticket_count(engine) == 12
    assert {t.customer_email for t in tickets} == {
        f"customer{n:05d}@example.com" for n in range(12)
    }
    assert {(t.title, t.status, t.source) for t in tickets} == {
        ("Your renewal is coming up", "open", "campaign")
    }
    assert {team_of(engine, t) for t in tickets} == {"360"}
    with Session(engine) as session:
        omar = get_user(session, "omar")
        assert {t.owner_id for t in tickets} == {omar.id}
        campaign = session.exec(select(Campaign)).one()
        assert campaign.created_by_id == get_user(session, "admin").id
        view = session.exec(select(SavedView)).one()
        assert (view.name, view.owner_id) == ("Campaign: Renewal 2027", None)
        assert view.filters["tag"] == "Renewal 2027"
        # The ticket.created workflow ran for every ticket.
        outbox = session.exec(select(OutboxMessage)).all()
        assert {m.ticket_id for m in outbox} == {t.id for t in tickets}


def test_a_taken_campaign_name_is_refused_and_writes_nothing(engine: Engine) -> None:
    build_small_desk(engine)
    add_contacts(engine, 4)
    add_contacts(engine, 2, plan="free", start=100)
    with unit_of_work(engine) as session:
        spec = CampaignSpec(name="Renewal 2027", filters=parse_filters(["plan=free"]),
                            subject="Earlier", team="Stats iQ")  # fmt: skip
        send_campaign(session, actor=get_user(session, "admin"), spec=spec)
    counts: dict[str, dict[str, int]] = {}

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_campaigns(app, pilot)
        campaigns = screen.query_one("#campaigns", DataTable)
        await wait_until(pilot, lambda: campaigns.row_count == 1, "the earlier campaign")
        assert campaigns.get_row_at(0)[:5] == ["Renewal 2027", "Earlier", "Stats iQ", "new", "2"]
        counts["before"] = table_counts(engine)
        await fill_form(pilot, name="Renewal 2027", filters="plan=enterprise")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "already exists" in outcome(app), "the refusal")
        assert outcome(app) == "A campaign named 'Renewal 2027' already exists: pick another name"
        assert screen.query_one("#outcome").has_class("-refused")
        assert not isinstance(app.screen, ConfirmDialog)
        assert table_counts(engine) == counts["before"]

    run_app(engine, desk("admin"), script)
    assert ticket_count(engine) == 2


def test_a_bad_filter_and_more_than_1000_contacts_are_one_line_each(engine: Engine) -> None:
    build_small_desk(engine)
    add_contacts(engine, 1001)
    counts: dict[str, dict[str, int]] = {}

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_campaigns(app, pilot)
        counts["before"] = table_counts(engine)
        await fill_form(pilot, name="Everyone", filters="plan")
        await pilot.press("shift+tab", "enter")  # Enter in a text field previews too
        await wait_until(pilot, lambda: "ATTR=VALUE" in outcome(app), "the bad filter")
        assert "'plan'" in outcome(app) and "\n" not in outcome(app)
        await pilot.press(*["shift+tab"] * 4)  # back to the filters, past subject, assignee, team
        assert app.focused is screen.query_one("#filters")
        await pilot.press("end", *"=enterprise", "enter")
        await wait_until(pilot, lambda: "1,001 contacts match" in outcome(app), "the refusal")
        assert "at most 1,000" in outcome(app) and "split" in outcome(app)
        assert screen.query_one("#preview", DataTable).row_count == 0
        await pilot.press("ctrl+s")  # sending is refused the same way, with no question
        await wait_until(pilot, lambda: not screen.sending, "the refused send")
        assert "1,001 contacts match" in outcome(app)
        assert table_counts(engine) == counts["before"]

    run_app(engine, desk("admin"), script)


def test_a_failing_workflow_leaves_no_ticket_at_all(engine: Engine) -> None:
    build_small_desk(engine)
    add_contacts(engine, 5)
    with transaction(engine) as session:  # one contact routes to a team that is not there
        session.add(
            Contact(
                name="Misrouted",
                email="customer00002x@example.com",
                attributes={"plan": "enterprise", "route": "Nowhere"},
            )
        )
    add_route_copy_workflow(engine)
    counts: dict[str, dict[str, int]] = {}

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_campaigns(app, pilot)
        counts["before"] = table_counts(engine)
        await fill_form(pilot, name="Renewal 2027", filters="plan=enterprise")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        assert "creates 6 tickets" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await wait_until(pilot, lambda: "Nothing sent" in outcome(app), "the failure")
        assert "No team named 'Nowhere'" in outcome(app)
        assert screen.query_one("#campaigns", DataTable).row_count == 0
        assert table_counts(engine) == counts["before"]

    run_app(engine, desk("admin"), script)
    assert ticket_count(engine) == 0


@pytest.mark.parametrize("user", ["maya", "vera"])
def test_only_an_admin_opens_the_screen(engine: Engine, user: str) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        first = QueuesScreen if user == "maya" else CheckinScreen
        await wait_until(pilot, lambda: isinstance(app.screen, first), "the first screen")
        app.navigate("Campaigns")  # the palette does not offer it (tests/test_palette_roles.py)
        refusal = "Only an admin can open Campaigns"
        await wait_until(pilot, lambda: notified(app, refusal), "the refusal")
        assert isinstance(app.screen, first)

    run_app(engine, desk(user), script)
