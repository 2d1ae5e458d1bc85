"""Snapshots of the desk's main screens (pytest-textual-snapshot) at a fixed terminal size.

The desk is deterministic: the small desk of ``tests/desk.py``, tickets checked in and worked
through the store, then every stored time set to fixed values; the app's clock is fixed too
and the local time zone is UTC, so waits and times never move. Input cursors do not blink.
SQLite only (the screens draw the same rows from either database). After a deliberate change
of a screen: ``pytest tests/test_tui_snapshots.py --snapshot-update``, then look at the SVGs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.db import make_engine, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Comment, Event, SurveyResponse, Ticket
from cxdesk.store.tickets import add_comment
from cxdesk.widgets.conversation import Conversation
from tests.cli_helpers import TEST_PASSWORD
from tests.desk import build_small_desk, pull
from tests.test_tui import check_in, label_text, wait_until

SIZE = (100, 32)
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
SnapCompare = Callable[..., bool]
SNAPSHOT_SLA = (
    {"first_response_due_at": -20, "first_response_warn_at": -22.5, "resolution_due_at": 15},
    {"first_response_due_at": 2, "first_response_warn_at": -1, "resolution_due_at": 25},
    {"first_response_due_at": -5, "first_response_warn_at": -7.5, "first_responded_at": -10,
     "resolution_due_at": 30, "resolution_warn_at": 19},
)  # fmt: skip
"""The three tickets' SLA columns, minutes from NOW: breached, warning, on track."""


@pytest.fixture(autouse=True)
def _utc_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def desk(sqlite_url: str) -> Iterator[Engine]:
    """Three check-ins (two waiting in 360, one pulled by maya with a comment), fixed times;
    under an SLA: breached, in warning, on track (``SNAPSHOT_SLA``)."""
    engine = make_engine(sqlite_url)
    build_small_desk(engine)
    keys = [check_in(engine, product) for product in ("360", "360", "Stats iQ")]
    pull(engine, "maya", "Stats iQ")
    with unit_of_work(engine) as session:
        maya = get_user(session, "maya")
        add_comment(session, actor=maya, key=keys[2], body="Called Ada; exports fail on Safari")
    with transaction(engine) as session:
        for minutes, key in zip((0, 10, 15), keys, strict=True):
            at = NOW - timedelta(minutes=30 - minutes)
            session.execute(
                update(Ticket).where(Ticket.key == key).values(created_at=at, updated_at=at)
            )
        session.execute(update(Ticket).where(Ticket.key == keys[2]).values(updated_at=NOW))
        for key, sla in zip(keys, SNAPSHOT_SLA, strict=True):  # as a policy would set them
            at = {name: NOW + timedelta(minutes=m) for name, m in sla.items()}
            session.execute(update(Ticket).where(Ticket.key == key).values(sla_policy_id=1, **at))
        session.execute(update(Event).values(created_at=NOW - timedelta(minutes=5)))
        session.execute(update(Comment).values(created_at=NOW - timedelta(minutes=5)))
        session.execute(update(SurveyResponse).values(created_at=NOW - timedelta(minutes=30)))
    yield engine
    engine.dispose()


def desk_app(engine: Engine, user: str) -> CxDeskApp:
    # A long poll: no reload can land between the last wait and the screenshot.
    return create_app(
        engine, user=user, poll_seconds=60, settings=Settings(), deliver=False, clock=lambda: NOW
    )


def still_cursors(app: CxDeskApp) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False


async def log_in(pilot: Pilot[Any], password: str = TEST_PASSWORD) -> None:
    app = pilot.app
    assert isinstance(app, CxDeskApp)
    await wait_until(pilot, lambda: isinstance(app.focused, Input), "the login form")
    await pilot.press(*password, "enter")


async def queues_shown(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
    await wait_until(
        pilot,
        lambda: (
            app.screen.query_one("#queues", DataTable).row_count == 4
            and app.screen.query_one("#mine", DataTable).row_count == 1
        ),
        "both tables",
    )
    # A table sizes its columns to new rows later, when idle, and a picture taken before
    # showed "Stats iQ" cut to "Stat" (1 run of the file in ~4): wait for the drawn screen.
    await wait_until(
        pilot,
        lambda: "Lovelace&#160;needs&#160;help" in app.export_screenshot(),
        "the tables drawn with their columns sized to their rows",
    )


def test_login_screen_after_a_wrong_password(desk: Engine, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CxDeskApp)
        await log_in(pilot, "nope")
        await wait_until(pilot, lambda: label_text(app, "#login-error").startswith("Unknown"), "")
        still_cursors(app)

    assert snap_compare(desk_app(desk, "maya"), terminal_size=SIZE, run_before=run_before)


def test_checkin_screen_with_a_bad_email(desk: Engine, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CxDeskApp)
        await log_in(pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, CheckinScreen), "check-in")
        await wait_until(
            pilot, lambda: app.focused is not None and app.focused.id == "q-first_name", "form"
        )
        await pilot.press(*"Grace", "tab", *"Hopper", "tab", *"grace-at-example", "enter")
        await wait_until(pilot, lambda: label_text(app, "#err-email"), "the email error")
        still_cursors(app)

    assert snap_compare(desk_app(desk, "vera"), terminal_size=SIZE, run_before=run_before)


def test_queues_screen(desk: Engine, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await log_in(pilot)
        await queues_shown(pilot)

    assert snap_compare(desk_app(desk, "maya"), terminal_size=SIZE, run_before=run_before)


async def ticket_shown(pilot: Pilot[Any]) -> None:
    """Log in, open my open ticket from the queues, wait for its fields and conversation."""
    app = pilot.app
    await log_in(pilot)
    await queues_shown(pilot)
    await pilot.press("tab", "enter")  # to my open tickets, open the one there
    await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
    screen = app.screen
    assert isinstance(screen, TicketScreen)
    await wait_until(pilot, lambda: screen.view is not None, "the ticket's fields")
    conversation = screen.query_one(Conversation)
    await wait_until(pilot, lambda: conversation.query(Static), "the conversation drawn")


def test_ticket_screen(desk: Engine, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await ticket_shown(pilot)

    assert snap_compare(desk_app(desk, "maya"), terminal_size=SIZE, run_before=run_before)
