"""The admin's Insights screen driven by keys (App.run_test + Pilot), on SQLite and PostgreSQL:
opened from the command palette, it draws CSAT % and NPS per team as bars whose lengths follow
the figures, with the answer counts; ``b`` switches to experts, ``p`` steps through the
periods, ``r`` reads again; each team's wait to pull and time to resolve are in its table. An
empty desk says "No survey answers yet"; an expert is refused and stays where they were.

Every statement the app runs is checked to be off the event loop (``run_app``).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from textual.pilot import Pilot
from textual.widgets import DataTable, Label
from textual.widgets._footer import FooterKey

from cxdesk.app import CxDeskApp, create_app
from cxdesk.screens.insights import InsightsScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.widgets.bar_chart import EIGHTHS, FULL, BarChart
from tests.desk import build_small_desk
from tests.test_insights import answer, build_insights_desk, worked_ticket
from tests.test_tui_views import desk, log_in, palette, run_app, wait_until
from tests.tui_helpers import notified


def quiet_desk(engine: Engine) -> CxDeskApp:
    """The app as admin, its change watcher too slow to reload during the test: only ``r``
    reads the desk again."""
    return create_app(engine, user="admin", poll_seconds=600)


def chart_lines(screen: InsightsScreen, chart: str) -> dict[str, str]:
    """The chart's rows by label (the text before the bar)."""
    widget = screen.query_one(f"#{chart}", BarChart)
    width = max(len(bar.label) for bar in widget.bars)
    return {line[:width].rstrip(): line for line in widget.render().plain.splitlines()}


def filled(line: str) -> float:
    """How many cells of the line's bar are filled (eighths count)."""
    return line.count(FULL) + sum(i / 8 for i, c in enumerate(EIGHTHS) if c and c in line)


def times_row(screen: InsightsScreen, team: str) -> list[str]:
    return [str(cell) for cell in screen.query_one("#times", DataTable).get_row(team)]


def info(screen: InsightsScreen) -> str:
    return str(screen.query_one("#insights-info", Label).render())


async def open_insights(app: CxDeskApp, pilot: Pilot[Any]) -> InsightsScreen:
    await log_in(app, pilot)
    await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
    await palette(pilot, "Insights")
    await wait_until(pilot, lambda: isinstance(app.screen, InsightsScreen), "insights")
    screen = app.screen
    assert isinstance(screen, InsightsScreen)
    await wait_until(pilot, lambda: screen.read is not None, "the first read")
    await pilot.pause()
    return screen


def test_admin_sees_csat_nps_and_times_per_team_and_switches_grouping_and_period(
    engine: Engine,
) -> None:
    build_insights_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_insights(app, pilot)
        keys = {key.key: key.description for key in screen.query(FooterKey)}
        assert {"b": "By expert/team", "p": "Period", "r": "Refresh"}.items() <= keys.items()
        assert "CSAT and NPS by team · all time · 5 CSAT and 2 NPS answers" in info(screen)
        csat = chart_lines(screen, "csat")
        assert list(csat) == ["360", "Stats iQ", "All"]
        assert "66.7%" in csat["360"] and "3 answers" in csat["360"]
        assert "50.0%" in csat["Stats iQ"] and "2 answers" in csat["Stats iQ"]
        assert "60.0%" in csat["All"] and "5 answers" in csat["All"]
        assert filled(csat["360"]) / filled(csat["Stats iQ"]) == pytest.approx(66.67 / 50, rel=0.02)
        nps = chart_lines(screen, "nps")
        assert "+100.0" in nps["360"] and nps["360"].endswith(" 1 answer")
        assert "-100.0" in nps["Stats iQ"]
        # NPS bars leave the zero line: a promoter team's to the right, a detractor's left.
        assert nps["Stats iQ"].index(FULL) < nps["360"].index(FULL)
        assert filled(nps["360"]) == filled(nps["Stats iQ"]) > 0
        assert times_row(screen, "360") == ["360", "3", "20m", "30m", "3", "50m", "1h 10m"]
        assert times_row(screen, "Stats iQ") == ["Stats iQ", "2", "10m", "15m", "2", "35m", "45m"]
        assert times_row(screen, "Solo") == ["Solo", "0", "–", "–", "0", "–", "–"]

        await pilot.press("b")  # by expert
        await wait_until(pilot, lambda: screen.read and screen.read.by == "expert", "experts")
        await pilot.pause()
        experts = chart_lines(screen, "csat")
        assert list(experts) == ["kenji", "maya", "omar", "All"]  # NPS-only "(none)" has no bar
        assert "100.0%" in experts["maya"] and experts["maya"].endswith(" 1 answer")
        assert "50.0%" in experts["omar"] and "2 answers" in experts["omar"]
        assert abs(filled(experts["omar"]) - filled(experts["maya"]) / 2) <= 1 / 8
        assert filled(experts["kenji"]) == filled(experts["omar"])
        assert list(chart_lines(screen, "nps")) == ["(none)", "All"]
        nps_title = str(screen.query_one("#nps-title", Label).render())
        assert "an NPS answer names no expert" in nps_title

        await pilot.press("p", "p")  # all time -> last 30 days -> last 7 days
        await wait_until(pilot, lambda: screen.read and screen.read.period == 2, "7 days")
        await pilot.pause()
        assert "by expert · last 7 days · 4 CSAT and 2 NPS answers" in info(screen)
        assert "0.0%" in chart_lines(screen, "csat")["kenji"]  # the 5 of 20 days ago is out
        await pilot.press("b")
        await wait_until(pilot, lambda: screen.read and screen.read.by == "team", "teams")
        await pilot.pause()
        stats = chart_lines(screen, "csat")["Stats iQ"]
        assert "0.0%" in stats and stats.endswith(" 1 answer") and FULL not in stats
        assert times_row(screen, "Stats iQ") == ["Stats iQ", "1", "5m", "5m", "1", "25m", "25m"]

        await pilot.press("p")  # back to all time
        await wait_until(pilot, lambda: screen.read and screen.read.period == 0, "all time")
        answer(engine, "csat", 5, expert="maya")  # arrives while the screen is open
        read = screen.read
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.read is not read, "the refresh")
        await pilot.pause()
        assert "6 CSAT" in info(screen)

    run_app(engine, quiet_desk, script)


def test_a_desk_change_reads_the_figures_again(engine: Engine) -> None:
    build_insights_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        screen = await open_insights(app, pilot)
        assert times_row(screen, "360")[1] == "3"
        screen.auto_reload_seconds = 0  # not 30 s between reads here
        worked_ticket(engine, "360", "maya", wait_minutes=90, resolve_minutes=100)  # elsewhere
        await wait_until(pilot, lambda: times_row(screen, "360")[1] == "4", "the new pull")
        assert times_row(screen, "360")[2:4] == ["25m", "1h 30m"]

    run_app(engine, desk("admin"), script)


def test_empty_desk_says_there_are_no_answers_yet(engine: Engine) -> None:
    build_small_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        app.navigate("Insights")
        await wait_until(pilot, lambda: isinstance(app.screen, InsightsScreen), "insights")
        screen = app.screen
        assert isinstance(screen, InsightsScreen)
        await wait_until(pilot, lambda: screen.read is not None, "the first read")
        await pilot.pause()
        empty = screen.query_one("#insights-empty", Label)
        assert empty.display and str(empty.render()) == "No survey answers yet"
        assert not screen.query_one("#csat", BarChart).display
        assert not screen.query_one("#nps", BarChart).display
        assert times_row(screen, "All") == ["All", "0", "–", "–", "0", "–", "–"]
        await pilot.press("p")
        await wait_until(pilot, lambda: screen.read and screen.read.period == 1, "30 days")
        await pilot.pause()
        assert str(empty.render()) == "No survey answers in the last 30 days"

    run_app(engine, desk("admin"), script)


def test_an_expert_is_refused_insights(engine: Engine) -> None:
    build_insights_desk(engine)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        await wait_until(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        app.navigate("Insights")  # the palette does not offer it (tests/test_palette_roles.py)
        refusal = "Only an admin can open Insights"
        await wait_until(pilot, lambda: notified(app, refusal), refusal)
        await pilot.pause(0.1)
        assert isinstance(app.screen, QueuesScreen)
        assert not app.query(InsightsScreen)

    run_app(engine, desk("maya"), script)
