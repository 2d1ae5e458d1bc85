"""The Insights screen's service-level panel: per team and target, the attainment, met and
breached counts and the time to the target (median, p90), as ``cxdesk report sla --by team``
prints them (``store.sla_report.report_lines``). It only draws: the screen reads the figures
in its worker and hands them to ``show``."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from cxdesk.i18n import N_, _
from cxdesk.store.sla_report import NOTHING_YET, SlaRow, report_lines
from cxdesk.widgets.table import DeskTable

TITLE = N_("SLA per team: attained = met / (met + breached); time to target")
COLUMNS = (N_("Team"), N_("Target"), N_("Attained"), N_("Met"), N_("Breached"), N_("Done"),
           N_("Median"), N_("p90"))  # fmt: skip
"""``report_lines``' columns (``store.sla_report.REPORT_COLUMNS`` after the group's)."""


class SlaPanel(Vertical):
    """A title, then the figures' table, or a line saying there are none yet."""

    DEFAULT_CSS = """
    SlaPanel { height: auto; }
    SlaPanel #sla-title { margin-top: 1; text-style: bold; color: $accent; }
    SlaPanel #sla-empty { color: $text-muted; }
    SlaPanel #sla-table { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Label(_(TITLE), id="sla-title")
        yield Label("", id="sla-empty")
        table: DataTable[str] = DeskTable(id="sla-table", cursor_type="none", zebra_stripes=True)
        table.add_columns(*(_(column) for column in COLUMNS))
        yield table

    def show(self, rows: list[SlaRow], period: str) -> None:
        """Draw the report's rows (per team, then ``All``); keyed ``team/target words``."""
        lines = report_lines(rows)
        empty = self.query_one("#sla-empty", Label)
        empty.display = not lines
        empty.update(_(NOTHING_YET) + f" ({period})")
        table: DataTable[str] = self.query_one("#sla-table", DataTable)
        table.display = bool(lines)
        table.clear()
        team = ""
        for line in lines:
            team = line[0] or team
            table.add_row(*line, key=f"{team}/{line[1]}")
