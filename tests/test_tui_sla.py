"""The SLA on the screens, driven by keys (App.run_test + Pilot) on SQLite and PostgreSQL: the
ticket list shows it and sorts by it, the ticket screen shows each target's due time and its
state turns as the app's (controlled) clock moves, the kanban's cards, the queues and the
waiting list show it. No statement may run on the event loop (``tui_helpers.run_app``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable, OptionList

from cxdesk.app import CxDeskApp, create_app
from cxdesk.local_time import shown_zone
from cxdesk.screens import tickets as tickets_screen
from cxdesk.screens.kanban import KanbanScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.screens.waiting_list import WaitingListScreen
from cxdesk.store.views import LIST_COLUMNS
from cxdesk.widgets.sla import SlaTargets
from tests import tui_helpers
from tests.test_sla_display import T0, build_sla_desk
from tests.test_tui_views import open_list, table_keys
from tests.tui_helpers import AnyApp, log_in, wait_until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXDESK_DELIVER", "0")


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def desk(user: str, clock: Clock) -> Callable[[Engine], AnyApp]:
    return lambda engine: create_app(engine, user=user, poll_seconds=0.2, clock=clock)


def run(engine: Engine, user: str, clock: Clock, script: Any) -> None:
    tui_helpers.run_app(engine, desk(user, clock), script, size=SIZE)


def cell_text(app: AnyApp, selector: str, row: str, column: int) -> str:
    table = app.screen.query_one(selector, DataTable)
    return str(table.get_row(row)[column])


async def open_ticket(app: CxDeskApp, pilot: Pilot[Any], key: str) -> TicketScreen:
    """Log in, open the ticket and wait until it is read."""
    await log_in(app, pilot)
    app.open_ticket(key)
    await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
    screen = app.screen
    assert isinstance(screen, TicketScreen)
    await wait_until(pilot, lambda: screen.view is not None, "the ticket read")
    return screen


def test_the_list_shows_the_sla_and_sorts_by_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = build_sla_desk(engine)
    monkeypatch.setattr(tickets_screen, "SLA_REDRAW_SECONDS", 0.05)
    clock = Clock()

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_list(app, pilot)
        column = list(LIST_COLUMNS).index("sla")
        assert cell_text(app, "#tickets", keys["late"], column) == "breached · 5m over"
        assert cell_text(app, "#tickets", keys["warn"], column) == "warning · 2m left"
        assert cell_text(app, "#tickets", keys["none"], column) == ""
        table = screen.query_one("#tickets", DataTable)
        table.move_cursor(row=0, column=column)
        await pilot.press("s")  # the nearest running due time first
        order = [keys[n] for n in ("late", "warn", "fine", "met", "paused", "none")]
        await wait_until(pilot, lambda: table_keys(app, "#tickets") == order, "sorted by SLA")
        assert "sorted by SLA ↑" in str(screen.query_one("#page-info").render())
        clock.now = T0 + timedelta(minutes=3)  # the column is worded again, with no read
        await wait_until(
            pilot,
            lambda: cell_text(app, "#tickets", keys["warn"], column) == "breached · 1m over",
            "the warning turned breached",
        )

    run(engine, "admin", clock, script)


def test_the_ticket_screen_shows_due_times_and_the_state_turns_with_the_clock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = build_sla_desk(engine)
    monkeypatch.setattr(SlaTargets, "redraw_seconds", 0.05)
    clock = Clock()
    due = (T0 + timedelta(minutes=2)).astimezone(shown_zone()).strftime("%H:%M")

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, keys["warn"])
        panel = screen.query_one(SlaTargets)
        await wait_until(pilot, lambda: panel.display and "warning" in panel.shown, "warning")
        assert panel.shown.split() == ["First", "response", "due", due, "warning", "·", "2m",
                                       "left"]  # fmt: skip
        clock.now = T0 + timedelta(minutes=3)  # no read: the panel words the columns again
        await wait_until(pilot, lambda: "breached · 1m over" in panel.shown, "breached")

    run(engine, "admin", clock, script)


def test_a_ticket_without_a_policy_shows_no_sla(engine: Engine) -> None:
    keys = build_sla_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_ticket(app, pilot, keys["none"])
        assert not screen.query_one(SlaTargets).display

    run(engine, "admin", Clock(), script)


def test_kanban_cards_show_their_sla(engine: Engine) -> None:
    keys = build_sla_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        app.navigate("Kanban")

        def card(key: str) -> str:
            screen = app.screen
            if not isinstance(screen, KanbanScreen) or not screen.query(OptionList):
                return ""
            options = screen.query_one("#column-0", OptionList)
            found = [o for o in options.options if o.id == key]
            return str(found[0].prompt) if found else ""

        await wait_until(pilot, lambda: card(keys["late"]).endswith("\nbreached 5m"), "the card")
        assert "paused" in card(keys["paused"])
        assert card(keys["none"]).count("\n") == 2  # no SLA line

    run(engine, "maya", Clock(), script)


def test_queues_and_the_waiting_list_show_the_sla(engine: Engine) -> None:
    keys = build_sla_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        screen = app.screen

        def queue_sla() -> str:
            table = screen.query_one("#queues", DataTable)
            return cell_text(app, "#queues", "360", 5) if "360" in table.rows else ""

        await wait_until(pilot, lambda: queue_sla() == "1 breached · 1 warning", "360's SLA")
        app.push_screen(WaitingListScreen("360"))
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, WaitingListScreen) and app.screen.rows is not None,
            "the waiting list",
        )
        assert cell_text(app, "#waiting", keys["late"], 2) == "breached · 5m over"
        assert cell_text(app, "#waiting", keys["none"], 2) == ""

    run(engine, "maya", Clock(), script)
