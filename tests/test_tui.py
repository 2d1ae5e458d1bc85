"""The desk in the terminal, driven by keys as a person types them (App.run_test + Pilot).

Every test runs on SQLite and PostgreSQL (the ``engine`` fixture) on the small desk of
``tests/desk.py``. Workers are waited for by polling a condition, never by fixed sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine
from sqlmodel import select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Select

from cxdesk.app import VOLUNTEER_REFUSAL, CxDeskApp, create_app
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.login import BAD_LOGIN, LoginScreen, failure_delay
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_user
from cxdesk.store.models import Comment, SurveyResponse, Ticket
from cxdesk.store.surveys import submit_response
from tests.desk import build_small_desk

SIZE = (120, 40)


def run(
    engine: Engine, user: str | None, script: Callable[[CxDeskApp, Pilot[None]], Awaitable[None]]
) -> None:
    """Run ``script`` against a fresh app on ``engine`` (pytest-asyncio is not installed)."""

    async def main() -> None:
        app = create_app(engine, user=user, poll_seconds=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await script(app, pilot)

    asyncio.run(main())


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], object], what: str, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)


def notified(app: CxDeskApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


def label_text(app: CxDeskApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Label).render())


async def log_in(app: CxDeskApp, pilot: Pilot[None], password: str = "pw") -> None:
    """With the username preselected (``--user``), type the password and press Enter."""
    await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")
    await type_text(pilot, password)
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.user is not None, "the login")


def check_in(engine: Engine, product: str) -> str:
    with unit_of_work(engine) as session:
        answers = {"first_name": "Ada", "last_name": "Lovelace",
                   "email": "ada@example.com", "product": product}  # fmt: skip
        vera = get_user(session, "vera")
        response = submit_response(session, actor=vera, survey_name="checkin", answers=answers)
    with read_session(engine) as session:  # the check-in workflow ran as the transaction ended
        ticket = session.exec(select(Ticket).where(Ticket.response_id == response.id)).one()
    assert ticket.key is not None
    return ticket.key


def stored_ticket(engine: Engine, key: str) -> tuple[Ticket, list[Comment]]:
    with read_session(engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.key == key)).one()
        comments = session.exec(select(Comment).where(Comment.ticket_id == ticket.id)).all()
        return ticket, list(comments)


async def queues_loaded(app: CxDeskApp, pilot: Pilot[None]) -> None:
    await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues screen")
    await wait_until(
        pilot, lambda: app.screen.query_one("#queues", DataTable).row_count == 3, "the queues"
    )


def test_login_wrong_then_right_password(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login screen")
        await type_text(pilot, "maya")
        await pilot.press("enter")  # to the password field
        await type_text(pilot, "wrong")
        await pilot.press("enter")
        await wait_until(pilot, lambda: label_text(app, "#login-error") == BAD_LOGIN, "refusal")
        assert app.user is None
        await type_text(pilot, "pw")
        await pilot.press("enter")
        await queues_loaded(app, pilot)
        assert app.user is not None and app.user.username == "maya"
        table = app.screen.query_one("#queues", DataTable)
        marks = {str(table.get_row(name)[1]): str(table.get_row(name)[0]) for name in
                 ("360", "Stats iQ", "Solo")}  # fmt: skip
        assert marks == {"360": "●", "Stats iQ": "●", "Solo": ""}

    run(engine, None, script)


def test_volunteer_checks_in_bad_email_then_good(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
        await wait_until(
            pilot, lambda: app.focused is not None and app.focused.id == "q-first_name", "form"
        )
        await type_text(pilot, "Ada")
        await pilot.press("tab")
        await type_text(pilot, "Lovelace")
        await pilot.press("tab")
        await type_text(pilot, "ada-at-example")
        await pilot.press("tab", "tab", "tab")  # phone, username: left empty
        assert app.focused is not None and app.focused.id == "q-product"
        await pilot.press("enter")  # opens the choices
        await type_text(pilot, "360")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: app.screen.query_one("#q-product", Select).value == "360", "choice"
        )
        await pilot.press("tab")
        await type_text(pilot, "Export fails")
        await pilot.press("enter")
        await wait_until(pilot, lambda: label_text(app, "#err-email"), "the email error")
        assert "not a valid email address" in label_text(app, "#err-email")
        assert label_text(app, "#err-first_name") == ""
        with read_session(engine) as session:
            assert session.exec(select(Ticket)).all() == []
            assert session.exec(select(SurveyResponse)).all() == []
        # The bad field has the focus: clear it and type a good address.
        assert app.focused is not None and app.focused.id == "q-email"
        await pilot.press("end", "ctrl+u")
        await type_text(pilot, "ada@example.com")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: label_text(app, "#checked-in").startswith("Checked in:"), "success"
        )
        assert label_text(app, "#checked-in") == "Checked in: EXP-1"
        ticket, comments = stored_ticket(engine, "EXP-1")
        assert ticket.customer_email == "ada@example.com" and ticket.customer_comment == (
            "Export fails"
        )
        screen = app.screen
        assert all(field.value == "" for field in screen.query(Input))
        assert screen.query_one("#q-product", Select).is_blank()
        assert app.focused is not None and app.focused.id == "q-first_name"
        # A volunteer cannot reach ticket screens.
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: notified(app, VOLUNTEER_REFUSAL), "the refusal")
        assert isinstance(app.screen, CheckinScreen)

    run(engine, "vera", script)


def test_expert_pulls_as_member_and_resolves_with_comment(engine: Engine) -> None:
    build_small_desk(engine)
    key = check_in(engine, "360")

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        table = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: str(table.get_row("360")[3]) == "1", "1 waiting in 360")
        await pilot.press("n")  # the cursor starts on the first queue, 360
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        ticket_screen = app.screen
        assert isinstance(ticket_screen, TicketScreen)
        await wait_until(pilot, lambda: ticket_screen.view is not None, "the ticket's fields")
        assert label_text(app, "#ticket-title").startswith(key)
        ticket, _ = stored_ticket(engine, key)
        assert ticket.owner_id is not None and ticket.status == "open"

        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the resolve dialog")
        await type_text(pilot, "Fixed the export")
        await pilot.press("enter")
        await wait_until(pilot, lambda: stored_ticket(engine, key)[0].status == "resolved", "save")
        ticket, comments = stored_ticket(engine, key)
        assert [c.body for c in comments] == ["Fixed the export"]
        assert ticket.resolved_at is not None
        log = ticket_screen.query_one("#log", DataTable)
        await wait_until(pilot, lambda: log.row_count >= 3, "the log to show the change")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "back to queues")

    run(engine, "maya", script)


def test_expert_pull_refused_on_other_team_and_empty_queue(engine: Engine) -> None:
    build_small_desk(engine)
    key = check_in(engine, "Stats iQ")

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        await pilot.press("n")  # 360: omar's team, nothing waiting
        await wait_until(pilot, lambda: notified(app, "No tickets waiting in 360"), "empty")
        await pilot.press("down", "down", "n")  # Stats iQ: not omar's team
        await wait_until(pilot, lambda: notified(app, "You are not on team Stats iQ"), "refusal")
        assert isinstance(app.screen, QueuesScreen)
        ticket, comments = stored_ticket(engine, key)
        assert ticket.owner_id is None and ticket.status == "new" and comments == []

    run(engine, "omar", script)


def test_repeated_login_failures_wait_longer() -> None:
    delays = [failure_delay(n) for n in range(10)]
    assert delays[:2] == [0.0, 0.0]
    assert delays[2:6] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == 30.0
