"""The Insights screen's service-level panel (``widgets.sla_panel``), driven by keys (Pilot) in
an 80x24 terminal with the high-contrast theme, on SQLite and PostgreSQL: per team and target
the figures of ``cxdesk report sla --by team``, every column within the screen's width; ``p``
steps to the last 7 days and the figures follow. A desk with no SLA tickets says so.

Every statement the app runs is checked to be off the event loop (``tests.tui_helpers``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable, Label

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.screens.insights import InsightsScreen
from tests.desk import build_small_desk
from tests.sla_helpers import MINUTE, give_sla
from tests.test_sla_report import build_sla_desk
from tests.test_tui_insights import open_insights
from tests.test_tui_views import wait_until
from tests.test_views import make_ticket
from tests.tui_helpers import run_app

SMALL = (80, 24)


def contrast_desk(engine: Engine) -> CxDeskApp:
    """The app as admin in the high-contrast theme; only ``r`` and ``p`` read again."""
    settings = Settings(extra={"theme": "cxdesk-high-contrast"})
    return create_app(engine, user="admin", poll_seconds=600, settings=settings)


def sla_rows(screen: InsightsScreen) -> dict[str, list[str]]:
    table = screen.query_one("#sla-table", DataTable)
    return {
        str(row.key.value): [str(cell) for cell in table.get_row(row.key)]
        for row in table.ordered_rows
    }


def test_the_panel_shows_each_teams_service_levels_at_80x24_in_high_contrast(
    engine: Engine,
) -> None:
    build_sla_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        assert app.theme == "cxdesk-high-contrast"
        screen = await open_insights(app, pilot)
        rows = sla_rows(screen)
        assert list(rows) == [
            "360/first response", "360/resolution",
            "Stats iQ/first response",
            "All/first response", "All/resolution",
        ]  # fmt: skip
        assert rows["360/first response"] == [
            "360", "first response", "66.7%", "2", "1", "3", "8m", "12m"
        ]  # fmt: skip
        assert rows["360/resolution"] == ["", "resolution", "33.3%", "1", "2", "2", "45m", "1h 00m"]
        assert rows["Stats iQ/first response"][2:5] == ["100.0%", "1", "0"]
        assert rows["All/first response"][2:] == ["75.0%", "3", "1", "4", "6m", "12m"]
        table = screen.query_one("#sla-table", DataTable)
        table.scroll_visible(animate=False)
        await pilot.pause()
        assert table.region.width <= SMALL[0] and table.virtual_size.width <= table.region.width
        assert table.region.height > 0 and table.region.bottom <= SMALL[1]

        await pilot.press("p", "p")  # all time -> 30 days -> 7 days: only E was created since
        await wait_until(pilot, lambda: screen.read and screen.read.period == 2, "7 days")
        await pilot.pause()
        assert list(sla_rows(screen)) == ["Stats iQ/first response", "All/first response"]

    run_app(engine, contrast_desk, script, size=SMALL)


def test_a_desk_without_sla_tickets_says_so(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_insights(app, pilot)
        empty = screen.query_one("#sla-empty", Label)
        assert empty.display and not screen.query_one("#sla-table", DataTable).display
        assert "No ticket with an SLA policy has met or breached a target yet" in str(
            empty.render()
        )
        # One arrives, met: read again with ``r``.
        key = make_ticket(engine, "Help", "360", customer_name="Ada")
        created = screen.now() - 30 * MINUTE
        give_sla(engine, key, created, resolution=None, first_responded_at=created + MINUTE)
        read = screen.read
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.read is not read, "the refresh")
        await pilot.pause()
        assert not empty.display
        assert sla_rows(screen)["360/first response"][2:] == ["100.0%", "1", "0", "1", "1m", "1m"]

    run_app(engine, contrast_desk, script, size=SMALL)
