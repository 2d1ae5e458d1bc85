"""``SaysWhenEmpty``: a table with no rows says so ("No tickets in this queue") on the line
under its header, instead of showing an empty table.

A mixin of ``DeskTable``. What each screen's table says is listed here (``NOTES``, by the
screen's class name and the table's id), or given as ``DeskTable(..., empty=N_("..."))``;
catalog text, translated when drawn. The note appears once the table was filled (its first
``clear``, which every screen's fill starts with), not while it is loading.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widgets import DataTable

from cxdesk.i18n import N_, _

NOTES: dict[tuple[str, str], str] = {
    ("QueuesScreen", "queues"): N_("No queues yet"),
    ("QueuesScreen", "mine"): N_("No open tickets of yours"),
    ("WaitingListScreen", "waiting"): N_("No tickets in this queue"),
    ("TicketsScreen", "tickets"): N_("No tickets match this filter"),
    ("StreamScreen", "stream"): N_("No events yet"),
    ("HistoryScreen", "history"): N_("No tickets yet"),
    ("BoardScreen", "board-serving"): N_("Nobody is being served"),
    ("BoardScreen", "board-waiting"): N_("Nobody is waiting"),
    ("CampaignsScreen", "campaigns"): N_("No campaigns yet"),
    ("InsightsScreen", "times"): N_("No tickets in this period"),
    ("TicketScreen", "history"): N_("No other tickets from this customer"),
    ("TicketScreen", "log"): N_("No events yet"),
}
"""What each screen's table says when it has no rows: (screen class, table id) -> text."""


class SaysWhenEmpty(DataTable[Any]):
    def __init__(self, *args: Any, empty: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.empty_note = empty
        """What the table says when it has no rows (catalog text; empty: ``NOTES``'s)."""
        self.filled = False
        """Whether rows were put in once (so an empty table is empty, not loading)."""

    def clear(self, columns: bool = False) -> Any:
        self.filled = True
        cleared = super().clear(columns)
        self.refresh(layout=True)  # a table as high as its rows makes room for the note
        return cleared

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        height = super().get_content_height(container, viewport, width)
        return height + 1 if self.says_empty else height

    @property
    def says_empty(self) -> str:
        """The note the table shows now (translated), or "" when it shows rows."""
        if self.row_count or not self.filled:
            return ""
        note = self.empty_note or NOTES.get((type(self.screen).__name__, self.id or ""), "")
        return _(note) if note else ""

    def render_line(self, y: int) -> Strip:
        note = self.says_empty
        if note and y == (self.header_height if self.show_header else 0):
            style = self.rich_style + Style(dim=True, italic=True)
            return Strip([Segment(f" {note}", style)]).adjust_cell_length(self.size.width, style)
        return super().render_line(y)
