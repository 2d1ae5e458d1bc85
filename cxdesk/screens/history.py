"""History ("My tickets"): the tickets I submitted or own, a page at a time, times local.

``c`` sorts by created the other way, ``o`` switches an admin to the organisation's tickets
(which adds the user column), ``]`` / ``[`` turn pages and Enter opens the ticket (its detail
screen has the escalation timeline and the requester's close and feedback actions).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Label

from cxdesk.i18n import N_, _
from cxdesk.labels import label
from cxdesk.screens.base import DeskScreen
from cxdesk.screens.tickets import cell
from cxdesk.store.db import read_session
from cxdesk.store.models import Role
from cxdesk.store.pages import HistoryRow, history_page
from cxdesk.store.views import PAGE_SIZE
from cxdesk.widgets.table import DeskTable

COLUMNS = (N_("ID"), N_("Subject"), N_("Status"), N_("Created"), N_("Last activity"), N_("Type"))
"""Key, subject and state first: in sight on an 80-column terminal."""
USER_COLUMN = N_("User")
"""The organisation's view adds who submitted or owns each ticket."""


@dataclass(frozen=True)
class HistoryRead:
    rows: list[HistoryRow]
    organisation: bool
    newest_first: bool
    offset: int


class HistoryScreen(DeskScreen):
    DEFAULT_CSS = """
    HistoryScreen #history-info { padding: 0 1; text-style: bold; }
    HistoryScreen #history { height: 1fr; }
    """
    BINDINGS = [
        Binding("c", "sort_created", N_("Sort by created")),
        Binding("o", "organisation", N_("My tickets / organisation")),
        Binding("right_square_bracket", "next_page", N_("Next page")),
        Binding("left_square_bracket", "previous_page", N_("Prev page")),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.read: HistoryRead | None = None
        """What is shown; None until the first read finishes."""
        self.wanted = (False, True, 0)
        """The page last asked for (organisation, newest first, offset): a reload while its
        read is on the way asks for it again, not for the page still shown."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(_("Loading…"), id="history-info")
        yield DeskTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#history", DataTable).focus()
        self.load(*self.wanted)

    def reload(self) -> None:
        self.load(*self.wanted)

    def ask(self, organisation: bool, newest_first: bool, offset: int) -> None:
        self.wanted = (organisation, newest_first, offset)
        self.load(*self.wanted)

    def load(self, organisation: bool, newest_first: bool, offset: int) -> None:
        def read() -> HistoryRead:
            with read_session(self.engine) as session:
                rows = history_page(session, actor=self.user, organisation=organisation,
                                    newest_first=newest_first, offset=offset,
                                    limit=PAGE_SIZE)  # fmt: skip
            return HistoryRead(rows, organisation, newest_first, offset)

        self.in_thread(read, self._show, group="history-load", reading=True)

    def _show(self, read: HistoryRead) -> None:
        self.read = read
        whose = _("My organisation's tickets") if read.organisation else _("My tickets")
        order = _("newest first") if read.newest_first else _("oldest first")
        first = read.offset + 1 if read.rows else 0
        rows = _("rows {first}-{last}").format(first=first, last=read.offset + len(read.rows))
        self.query_one("#history-info", Label).update(f"{whose} · {order} · {rows}")
        table: DataTable[str] = self.query_one("#history", DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        titles = (*COLUMNS, *((USER_COLUMN,) if read.organisation else ()))
        table.add_columns(*(_(title) for title in titles))
        for row in read.rows:
            cells = [row.key, cell(row.title), label(row.status), cell(row.created_at),
                     cell(row.updated_at), label(row.channel)]  # fmt: skip
            if read.organisation:
                cells.append(row.user or "")
            table.add_row(*cells, key=row.key)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The organisation's tickets are an admin's: the key is not offered to others."""
        user = self.desk.user
        return not (action == "organisation" and (user is None or user.role != Role.admin))

    def action_sort_created(self) -> None:
        if self.read is not None:
            self.ask(self.read.organisation, not self.read.newest_first, 0)

    def action_organisation(self) -> None:
        if self.read is None:
            return
        user = self.desk.user  # the UI thread: who is logged in (``DeskScreen.user``)
        if not self.read.organisation and (user is None or user.role != Role.admin):
            self.notify(_("Only an admin sees the organisation's tickets"), severity="warning")
            return
        self.ask(not self.read.organisation, self.read.newest_first, 0)

    def action_next_page(self) -> None:
        if self.read is not None and len(self.read.rows) == PAGE_SIZE:
            self.ask(self.read.organisation, self.read.newest_first, self.read.offset + PAGE_SIZE)

    def action_previous_page(self) -> None:
        if self.read is not None and self.read.offset:
            offset = max(0, self.read.offset - PAGE_SIZE)
            self.ask(self.read.organisation, self.read.newest_first, offset)

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.desk.open_ticket(event.row_key.value)
