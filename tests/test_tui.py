"""The desk in the terminal, driven by keys as a person types them (App.run_test + Pilot).

Every test runs on SQLite and PostgreSQL (the ``engine`` fixture) on the small desk of
``tests/desk.py``. Workers are waited for by polling a condition, never by fixed sleeps.

The app gets its own engine on the same database (as another terminal would), and every
statement it runs is checked: none may run on the event loop's thread (the UI never waits for
the database). The test's own reads and writes go through the ``engine`` fixture.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Select

from cxdesk.app import NOT_BUILT, VOLUNTEER_REFUSAL, CxDeskApp, create_app, delivery_enabled
from cxdesk.config import Settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.login import BAD_LOGIN, LoginScreen
from cxdesk.screens.new_ticket import NewTicketScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.changes import change_token
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.logins import login_source
from cxdesk.store.models import (
    Attachment,
    Comment,
    Event,
    LoginFailure,
    OutboxMessage,
    SurveyResponse,
    Team,
    Ticket,
    utcnow,
)
from cxdesk.store.surveys import submit_response
from cxdesk.widgets.change_dialog import ChangeDialog
from tests.cli_helpers import TEST_PASSWORD
from tests.desk import build_small_desk, pull
from tests.peers import TWILIO_TEST_ACCOUNT_SID, TWILIO_TEST_FROM, SmtpPeer
from tests.tui_helpers import (
    choose,
    log_in,
    notified,
    open_pulled_ticket,
    palette,
    queues_loaded,
    run_app,
    wait_until,
)

SIZE = (120, 40)
Script = Callable[[CxDeskApp, Pilot[None]], Awaitable[None]]


def run(engine: Engine, user: str | None, script: Script, **options: Any) -> None:
    """Run ``script`` against a fresh app on its own engine on ``engine``'s database, and fail
    if the app ran any statement on the event loop's thread (pytest-asyncio is not installed).
    """
    options.setdefault("deliver", False)
    run_app(
        engine,
        lambda app_engine: create_app(app_engine, user=user, poll_seconds=0.2, **options),
        script,
        size=SIZE,
    )


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)


def label_text(app: CxDeskApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Label).render())


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


async def new_ticket_form(app: CxDeskApp, pilot: Pilot[None]) -> NewTicketScreen:
    """Log in, open the new-ticket form (ctrl+n) and wait for its team choices."""
    await log_in(app, pilot)
    await queues_loaded(app, pilot)
    await pilot.press("ctrl+n")
    await wait_until(pilot, lambda: isinstance(app.screen, NewTicketScreen), "the form")
    form = app.screen
    assert isinstance(form, NewTicketScreen)
    await wait_until(
        pilot, lambda: len(form.query_one("#team", Select)._options) > 1, "the choices"
    )
    return form


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
        await type_text(pilot, TEST_PASSWORD)
        await pilot.press("enter")
        await queues_loaded(app, pilot)
        assert app.user is not None and app.user.username == "maya"
        table = app.screen.query_one("#queues", DataTable)
        marks = {str(table.get_row(name)[1]): str(table.get_row(name)[0]) for name in
                 ("360", "Stats iQ", "Solo")}  # fmt: skip
        assert marks == {"360": "●", "Stats iQ": "●", "Solo": ""}

    run(engine, None, script)


def test_login_after_repeated_failures_says_how_long_to_wait(engine: Engine) -> None:
    """The CLI's failure count holds here too: the right password waits out the delay."""
    build_small_desk(engine)
    with Session(engine) as session:  # as if `cxdesk login maya` had failed 6 times just now
        session.add(LoginFailure(username="maya", source=login_source(), failures=6,
                                 locked_until=utcnow() + timedelta(hours=1)))  # fmt: skip
        session.commit()

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login screen")
        await type_text(pilot, TEST_PASSWORD)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: label_text(app, "#login-error").startswith("Too many"), "the delay"
        )
        assert "try again in" in label_text(app, "#login-error") and app.user is None

    run(engine, "maya", script)


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
        # A volunteer cannot reach ticket screens (ctrl+n is not even offered to one).
        app.navigate("New ticket")
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
        await wait_until(pilot, lambda: str(table.get_row("360")[2]) == "1", "1 waiting in 360")
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


# -- live updates and delivery ---------------------------------------------------------------


def test_queue_count_drops_when_another_terminal_pulls(engine: Engine) -> None:
    build_small_desk(engine)
    check_in(engine, "360")

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        table = app.screen.query_one("#queues", DataTable)
        await wait_until(pilot, lambda: str(table.get_row("360")[2]) == "1", "1 waiting in 360")
        pull(engine, "maya", "360")  # maya, at another terminal, pulls it
        await wait_until(pilot, lambda: str(table.get_row("360")[2]) == "0", "the count to drop")
        check_in(engine, "360")  # and a volunteer checks another customer in
        await wait_until(pilot, lambda: str(table.get_row("360")[2]) == "1", "the count to rise")

    run(engine, "omar", script)


def add_alert_workflows(engine: Engine) -> None:
    """The demo's alerts: SMS and email when pulled, the CSAT email when resolved."""
    from cxdesk.engine.workflows import save_workflow
    from cxdesk.store.db import transaction

    with transaction(engine) as s:
        save_workflow(
            s,
            actor=None,
            name="Assigned",
            event="ticket.assigned_from_queue",
            tasks=[
                {"type": "send_sms", "to": "${tck://Field/customerPhone}",
                 "body": "${tck://Field/ownerName} is ready for ${tck://kv/Firstname}"},
                {"type": "send_email", "to": "${tck://Field/customerEmail}",
                 "subject": "${tck://Field/ownerName} is ready", "body": "See you"},
            ],
        )  # fmt: skip
        save_workflow(
            s,
            actor=None,
            name="CSAT",
            event="ticket.status_changed",
            conditions={"all": [{"field": "tck://Field/status", "op": "is", "value": "resolved"}]},
            tasks=[{"type": "send_email", "to": "${tck://Field/customerEmail}",
                    "subject": "How did we do?", "body": "https://x.example/f"}],
        )  # fmt: skip


def test_the_app_delivers_alerts_while_experts_work(
    engine: Engine, smtp_server: SmtpPeer, twilio_mock: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_small_desk(engine)
    add_alert_workflows(engine)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "test-token")
    settings = Settings(
        extra={
            "smtp": {"host": smtp_server.host, "port": smtp_server.port,
                     "mail_from": "Ask the Experts <desk@example.com>"},
            "twilio": {"account_sid": TWILIO_TEST_ACCOUNT_SID, "from_number": TWILIO_TEST_FROM,
                       "api_url": twilio_mock},
        }
    )  # fmt: skip
    with unit_of_work(engine) as session:
        answers = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                   "phone": "+1 415 555 0100", "product": "360"}  # fmt: skip
        submit_response(session, actor=get_user(session, "vera"), survey_name="checkin",
                        answers=answers)  # fmt: skip

    def subjects() -> list[str]:
        return sorted(str(item.message["Subject"]) for item in smtp_server.received)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        await wait_until(pilot, lambda: subjects() == ["Maya is ready"], "the pull's email")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the resolve dialog")
        await type_text(pilot, "Fixed")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: subjects() == ["How did we do?", "Maya is ready"], "the CSAT email"
        )
        await wait_until(pilot, lambda: len(sent_outbox(engine)) == 3, "the SMS sent")

    run(engine, "maya", script, deliver=True, settings=settings)
    sent = sent_outbox(engine)
    assert sorted(m.channel for m in sent) == ["email", "email", "sms"]
    assert all(m.status == "sent" for m in sent)
    assert {item.message["To"] for item in smtp_server.received} == {"ada@example.com"}


def sent_outbox(engine: Engine) -> list[OutboxMessage]:
    with read_session(engine) as session:
        return list(session.exec(select(OutboxMessage).where(OutboxMessage.status == "sent")).all())


def test_a_delivery_failure_never_stops_the_desk(engine: Engine) -> None:
    build_small_desk(engine)
    add_alert_workflows(engine)
    key = check_in(engine, "360")
    # Nothing listens on this port and SMS is not configured: every message fails.
    settings = Settings(extra={"smtp": {"host": "127.0.0.1", "port": 9, "timeout": 2}})

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        await wait_until(pilot, lambda: "failed" in app.delivery_problem, "delivery trouble")
        await pilot.press("c")  # the desk keeps working
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the comment dialog")
        await type_text(pilot, "Still here")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(stored_ticket(engine, key)[1]) == 1, "the comment")

    run(engine, "maya", script, deliver=True, settings=settings)
    with read_session(engine) as session:
        waiting = session.exec(select(OutboxMessage)).all()
    assert waiting and all(m.status in ("pending", "failed") for m in waiting)


def test_an_admin_is_told_when_delivery_cannot_start(engine: Engine) -> None:
    build_small_desk(engine)
    settings = Settings(extra={"smtp": {"tls": "sometimes"}})

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        await wait_until(pilot, lambda: notified(app, "Delivery is off: Setting smtp.tls"), "")

    run(engine, "admin", script, deliver=True, settings=settings)


# -- the ticket screen's edits ----------------------------------------------------------------


def test_change_team_and_owner_with_a_comment(engine: Engine) -> None:
    build_small_desk(engine)
    key = check_in(engine, "360")

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        screen = await open_pulled_ticket(app, pilot)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the dialog")
        dialog = app.screen
        owner = dialog.query_one("#owner", Select)
        assert owner.value == "maya"  # the current owner is on the chosen team
        await choose(pilot, "Stats")
        await wait_until(pilot, lambda: dialog.query_one("#value", Select).value == "Stats iQ", "")
        await pilot.press("tab")
        await choose(pilot, "kenji")
        await wait_until(pilot, lambda: owner.value == "kenji", "kenji chosen")
        await pilot.press("tab")
        await pilot.press("enter")  # no comment yet: refused inside the dialog
        error = dialog.query_one("#dialog-error", Label)
        await wait_until(pilot, lambda: "required" in str(error.render()), "the refusal")
        assert app.screen is dialog
        await type_text(pilot, "Stats iQ owns exports")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog to close")
        ticket, comments = stored_ticket(engine, key)
        with read_session(engine) as session:
            team = session.get(Team, ticket.team_id)
            owner_user = session.get(type(get_user(session, "kenji")), ticket.owner_id)
        assert team is not None and team.name == "Stats iQ"
        assert owner_user is not None and owner_user.username == "kenji"
        assert [c.body for c in comments] == ["Stats iQ owns exports"]
        log = screen.query_one("#log", DataTable)

        def logged_changes() -> list[tuple[str, str, str]]:
            rows = [log.get_row_at(i) for i in range(log.row_count)]
            return [(str(r[2]), str(r[3]), str(r[4])) for r in rows]

        await wait_until(
            pilot,
            lambda: ("Updated Team", "360", "Stats iQ") in logged_changes(),
            "the team change in the log",
        )
        assert ("Owner changed Owner", "Maya", "Kenji") in logged_changes()  # names

    run(engine, "maya", script)


def test_comment_with_attachments_and_a_file_too_big(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_small_desk(engine)
    monkeypatch.chdir(tmp_path)  # short relative paths to type
    key = check_in(engine, "360")
    notes = tmp_path / "notes.txt"
    notes.write_text("export log\n")
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF" + b"x" * (600 * 1024))

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        screen = await open_pulled_ticket(app, pilot)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the comment dialog")
        await type_text(pilot, "Log attached")
        await pilot.press("tab")
        await type_text(pilot, notes.name)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen, "the dialog to close")

        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeDialog), "the dialog")
        dialog = app.screen
        await type_text(pilot, "Screenshot too")
        await pilot.press("tab")
        await type_text(pilot, f"{notes.name}, {big.name}")
        await pilot.press("enter")
        error = dialog.query_one("#dialog-error", Label)
        await wait_until(pilot, lambda: "Not saved" in str(error.render()), "the refusal")
        assert str(error.render()) == "Not saved: big.pdf: is 600 KB; the limit is 500 KB"
        assert app.screen is dialog  # what was typed is kept to fix
        assert dialog.query_one("#comment", Input).value == "Screenshot too"
        await pilot.press("escape")

    run(engine, "maya", script)
    _, comments = stored_ticket(engine, key)
    assert [c.body for c in comments] == ["Log attached"]
    with read_session(engine) as session:
        files = session.exec(select(Attachment)).all()
    assert [(f.filename, f.content, f.comment_id) for f in files] == [
        ("notes.txt", b"export log\n", comments[0].id)
    ]


# -- new ticket and the palette ----------------------------------------------------------------


def test_new_ticket_form(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await new_ticket_form(app, pilot)
        await type_text(pilot, "grace@example.com")
        await pilot.press("tab")
        await type_text(pilot, "Grace Hopper")
        await pilot.press("tab")
        await choose(pilot, "high")
        await pilot.press("tab", "tab")  # status: new by default
        await choose(pilot, "Stats")
        await pilot.press("tab")
        await choose(pilot, "kenji")
        await pilot.press("tab")
        await type_text(pilot, "Called about renewals")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the new ticket")
        with read_session(engine) as session:
            ticket = session.exec(select(Ticket)).one()
            team = session.get(Team, ticket.team_id)
            kenji = get_user(session, "kenji")
        assert (ticket.customer_email, ticket.customer_name, ticket.priority) == (
            "grace@example.com", "Grace Hopper", "high"
        )  # fmt: skip
        assert team is not None and team.name == "Stats iQ" and ticket.owner_id == kenji.id
        assert ticket.customer_comment == "Called about renewals"

    run(engine, "maya", script)


def test_palette_opens_every_screen_by_name(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        await log_in(app, pilot)
        await queues_loaded(app, pilot)
        await palette(pilot, "Check-in")
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
        await palette(pilot, "New ticket")
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketScreen), "new ticket")
        await pilot.press("escape")
        await palette(pilot, "Queues")
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "queues")
        for name in sorted(NOT_BUILT)[:1]:
            await palette(pilot, name)
            refusal = f"{name}: not built yet"
            await wait_until(pilot, lambda: notified(app, refusal), refusal)  # noqa: B023
            assert isinstance(app.screen, QueuesScreen)
        await palette(pilot, "Log out")
        await wait_until(pilot, lambda: isinstance(app.screen, LoginScreen), "the login screen")
        assert app.user is None

    run(engine, "admin", script)


# -- settings and the change token -------------------------------------------------------------


def test_delivery_follows_the_environment_then_the_config_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert delivery_enabled(Settings()) is True
    assert delivery_enabled(Settings(extra={"deliver": False})) is False
    monkeypatch.setenv("CXDESK_DELIVER", "on")
    assert delivery_enabled(Settings(extra={"deliver": False})) is True
    monkeypatch.setenv("CXDESK_DELIVER", "0")
    assert delivery_enabled(Settings()) is False
    monkeypatch.setenv("CXDESK_DELIVER", "sometimes")
    with pytest.raises(DeskError, match="deliver must be true or false"):
        delivery_enabled(Settings())


def add_event(session: Session) -> None:
    session.add(Event(kind="test.change"))
    session.flush()


def test_the_change_token_moves_with_every_event(engine: Engine) -> None:
    with read_session(engine) as session:
        first = change_token(session)
    with transaction(engine) as session:
        add_event(session)
    with read_session(engine) as session:
        second = change_token(session, first.next_since)
        third = change_token(session, second.next_since)
    with transaction(engine) as session:
        add_event(session)
    with read_session(engine) as session:
        fourth = change_token(session, third.next_since)
    assert second.differs_from(first) and (second.highest, second.recent) == (1, 1)
    assert not third.differs_from(second)
    assert fourth.differs_from(third) and (fourth.highest, fourth.recent) == (2, 2)


def test_the_change_token_notices_a_late_commit_on_postgresql(pg_url: str) -> None:
    """Two transactions take event ids 1 and 2; the one with id 1 commits last."""
    engine = make_engine(pg_url)
    try:
        with transaction(engine) as session:
            add_event(session)  # a history to start from
        with read_session(engine) as session:
            before = change_token(session)
            settled = change_token(session, before.next_since)
        with Session(engine) as slow:
            add_event(slow)  # takes the lower id, not committed yet
            with transaction(engine) as fast:
                add_event(fast)
            with read_session(engine) as session:
                seen = change_token(session, settled.next_since)
                again = change_token(session, seen.next_since)
            slow.commit()
        with read_session(engine) as session:
            late = change_token(session, again.next_since)
        assert seen.differs_from(settled) and not again.differs_from(seen)
        assert late.highest == again.highest  # the late row is below the highest id
        assert late.differs_from(again)
    finally:
        engine.dispose()


def test_quitting_the_moment_the_desk_opens_ends_cleanly(engine: Engine) -> None:
    """The queues screen is replaced by the app's end before it has mounted its tables (a
    quit right after Enter at login): the app ends with code 0, not a NoMatches traceback."""
    build_small_desk(engine)
    ended: list[int | None] = []

    async def script(app: CxDeskApp, pilot: Pilot[None]) -> None:
        open_desk = app.log_in

        def log_in_then_quit(user: Any) -> None:
            open_desk(user)
            app.exit()

        app.log_in = log_in_then_quit  # type: ignore[method-assign]
        await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")
        await pilot.press(*TEST_PASSWORD, "enter")
        await wait_until(pilot, lambda: app.return_code is not None, "the app's end")
        ended.append(app.return_code)

    run(engine, "maya", script)
    assert ended == [0]
