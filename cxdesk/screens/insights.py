"""The admin's Insights screen: CSAT % and NPS per team or per expert as horizontal bar charts
with their number of answers, each team's wait to pull and time to resolve (count, median,
90th percentile) in a table, and each team's service levels (``widgets.sla_panel``: ``cxdesk
report sla --by team``), over all time, the last 30 days or the last 7 days.

The figures are ``cxdesk report csat``'s (``store.reports``), read in a worker. When the desk
changes they are read again, at most every ``AUTO_RELOAD_SECONDS`` (an all-time read of a
100,000-ticket desk takes about a second, and a busy desk changes every second).

Keys: ``b`` switches between teams and experts, ``p`` steps through the periods, ``r`` reads
again. A desk without answers says so instead of drawing empty charts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Label

from cxdesk.i18n import N_, _, ngettext, pgettext
from cxdesk.screens.base import DeskScreen
from cxdesk.store.db import read_session
from cxdesk.store.reports import (
    ScoreRow,
    TeamTimes,
    csat_report,
    group_label,
    shown_seconds,
    team_times,
)
from cxdesk.store.sla_report import SlaRow, sla_report
from cxdesk.widgets.bar_chart import Bar, BarChart
from cxdesk.widgets.sla_panel import SlaPanel
from cxdesk.widgets.table import DeskTable

PERIODS: tuple[tuple[str, int | None], ...] = (
    (N_("all time"), None),
    (N_("last 30 days"), 30),
    (N_("last 7 days"), 7),
)
"""Name (``_(name)`` shows it) and length in days (None: everything) of the periods ``p``
steps through."""
NO_ANSWERS_IN = {
    30: N_("No survey answers in the last 30 days"),
    7: N_("No survey answers in the last 7 days"),
}
"""What an empty period says, by its length in days."""

AUTO_RELOAD_SECONDS = 30.0
CSAT_TITLE = N_("CSAT: share of satisfied answers (the top two points: 4-5 of 5)")
NPS_TITLE = N_("NPS: % promoters (9-10) - % detractors (0-6)")
NPS_BY_EXPERT_TITLE = N_(
    "NPS: % promoters (9-10) - % detractors (0-6) · an NPS answer names no expert: (none)"
)


def times_columns() -> tuple[str, ...]:
    """The times table's titles in the current language (its counts are numbers of tickets:
    "Resolved" is not the ticket screen's date)."""
    return (_("Team"), pgettext("number of tickets", "Pulled"), _("Wait (median)"),
            _("Wait (p90)"), pgettext("number of tickets", "Resolved"), _("Resolve (median)"),
            _("Resolve (p90)"))  # fmt: skip


def answers(count: int) -> str:
    return ngettext("{n} answer", "{n} answers", count).format(n=count)


def csat_bars(rows: list[ScoreRow]) -> list[Bar]:
    return [
        Bar(
            group_label(row.group),
            row.csat_percent,
            f"{row.csat_percent:5.1f}%  {answers(row.csat_answers)}",
        )
        for row in rows
        if row.csat_percent is not None
    ]


def nps_bars(rows: list[ScoreRow]) -> list[Bar]:
    return [
        Bar(group_label(row.group), row.nps, f"{row.nps:+6.1f}  {answers(row.nps_answers)}")
        for row in rows
        if row.nps is not None
    ]


@dataclass(frozen=True)
class InsightsRead:
    """What the screen shows, read in one worker pass."""

    by: str
    period: int
    scores: list[ScoreRow]
    times: list[TeamTimes]
    sla: list[SlaRow]
    """``cxdesk report sla --by team``'s rows (``widgets.sla_panel``)."""

    @property
    def period_name(self) -> str:
        return _(PERIODS[self.period][0])


class InsightsScreen(DeskScreen):
    DEFAULT_CSS = """
    InsightsScreen #insights-info { padding: 0 1; color: $text-muted; }
    InsightsScreen #insights-body { height: 1fr; padding: 0 1; }
    InsightsScreen .chart-title { margin-top: 1; text-style: bold; color: $accent; }
    InsightsScreen #insights-empty { margin: 1 0; text-style: bold; color: $warning; }
    InsightsScreen #times { height: auto; }
    """
    BINDINGS = [
        Binding("b", "toggle_by", N_("By expert/team")),
        Binding("p", "next_period", N_("Period")),
        Binding("r", "refresh", N_("Refresh")),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.by = "team"
        """How answers are grouped: ``team`` or ``expert``."""
        self.period = 0
        """Index into PERIODS."""
        self.read: InsightsRead | None = None
        """What the screen shows, as last read; None until the first read finishes."""
        self.auto_reload_seconds = AUTO_RELOAD_SECONDS
        """The least time between the reads a desk change starts (``r`` reads at once)."""
        self._reading = 0
        """Reads started and not finished: a desk change does not pile up more of them."""
        self._last_request = 0.0
        self._pending_reload: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(_("Loading…"), id="insights-info")
        with VerticalScroll(id="insights-body"):
            yield Label("", id="insights-empty")
            yield Label(_(CSAT_TITLE), classes="chart-title score", markup=False)
            yield BarChart(low=0, high=100, id="csat", classes="score")
            yield Label(_(NPS_TITLE), id="nps-title", classes="chart-title score", markup=False)
            yield BarChart(low=-100, high=100, id="nps", classes="score")
            yield Label(_("Wait to pull and time to resolve per team"), classes="chart-title")
            times: DataTable[str] = DeskTable(id="times", cursor_type="none", zebra_stripes=True)
            times.add_columns(*times_columns())
            yield times
            yield SlaPanel(id="sla")
        yield Footer()

    def on_mount(self) -> None:
        self.request()

    def reload(self) -> None:
        """Read again for a desk change: now, or once the last read is old enough."""
        if self._pending_reload is not None:
            return  # one is already planned, and it will see this change too
        due = self._last_request + self.auto_reload_seconds - time.monotonic()
        if due <= 0 and not self._reading:
            self.request()
        else:
            self._pending_reload = self.set_timer(max(due, 1.0), self._planned_reload)

    def _planned_reload(self) -> None:
        self._pending_reload = None
        self.reload()

    def request(self) -> None:
        self._last_request = time.monotonic()
        self._reading += 1
        self.load(self.by, self.period)

    def load(self, by: str, period: int) -> None:
        def read() -> InsightsRead:
            days = PERIODS[period][1]
            now = self.now()
            since = None if days is None else now - timedelta(days=days)
            with read_session(self.engine) as session:
                scores = csat_report(session, by=by, since=since)
                times = team_times(session, since=since)
                sla = sla_report(session, now=now, by="team", since=since)
            return InsightsRead(by, period, scores, times, sla)

        self.in_thread(read, self._show, group="insights-load", reading=True,
                       done=self._read_done)  # fmt: skip

    def _read_done(self) -> None:
        self._reading = max(0, self._reading - 1)

    def _show(self, read: InsightsRead) -> None:
        self.read = read
        total = read.scores[-1]
        by = _("CSAT and NPS by expert") if read.by == "expert" else _("CSAT and NPS by team")
        counts = _("{csat} CSAT and {nps} NPS answers").format(
            csat=total.csat_answers, nps=total.nps_answers
        )
        self.query_one("#insights-info", Label).update(f"{by} · {read.period_name} · {counts}")
        answered = bool(total.csat_answers or total.nps_answers)
        empty = self.query_one("#insights-empty", Label)
        empty.display = not answered
        empty.update(
            _("No survey answers yet")
            if PERIODS[read.period][1] is None
            else _(NO_ANSWERS_IN[PERIODS[read.period][1] or 0])
        )
        for part in self.query(".score"):
            part.display = answered
        nps_title = NPS_BY_EXPERT_TITLE if read.by == "expert" else NPS_TITLE
        self.query_one("#nps-title", Label).update(_(nps_title))
        csat, nps = csat_bars(read.scores), nps_bars(read.scores)
        self.query_one("#csat", BarChart).show(csat, empty=_("No CSAT answers yet"))
        self.query_one("#nps", BarChart).show(nps, empty=_("No NPS answers yet"))
        table: DataTable[str] = self.query_one("#times", DataTable)
        table.clear()
        for row in read.times:
            table.add_row(
                group_label(row.team),
                str(row.wait.count),
                shown_seconds(row.wait.median),
                shown_seconds(row.wait.p90),
                str(row.resolve.count),
                shown_seconds(row.resolve.median),
                shown_seconds(row.resolve.p90),
                key=row.team,
            )
        self.query_one("#sla", SlaPanel).show(read.sla, read.period_name)

    def action_toggle_by(self) -> None:
        self.by = "expert" if self.by == "team" else "team"
        self.request()

    def action_next_period(self) -> None:
        self.period = (self.period + 1) % len(PERIODS)
        self.request()

    def action_refresh(self) -> None:
        self.request()
