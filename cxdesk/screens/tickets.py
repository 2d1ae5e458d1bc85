"""The ticket list: every ticket, filtered, sorted, a page at a time, with its summary line.

The filter bar (Enter in any field applies it) starts on the last 30 days. The table shows one
page (``PAGE_SIZE`` rows) read by a worker; ``]`` / ``[`` turn pages, ``s`` sorts by the
column under the cursor (again: the other way; the SLA column: the nearest running due time
first, breached ones at the top, paused tickets and those without SLA last), Enter opens the
ticket, ``x`` exports the filtered list to .xlsx or .csv, ``ctrl+s`` saves the filter as a
view and ``w`` recalls one.
The page is read again when the desk changes (``DeskChanged``), here or in another terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Label

from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, ngettext
from cxdesk.labels import LABELLED, label
from cxdesk.local_time import shown_time
from cxdesk.screens.background import ignore_failure
from cxdesk.screens.base import DeskScreen
from cxdesk.store.db import read_session, transaction
from cxdesk.store.export import export_tickets
from cxdesk.store.views import (
    LIST_COLUMNS,
    PAGE_SIZE,
    Sort,
    Summary,
    TicketFilter,
    TicketRow,
    build_filter,
    get_view,
    list_views,
    save_view,
    ticket_page,
    ticket_summary,
)
from cxdesk.widgets.prompt_dialog import PromptDialog
from cxdesk.widgets.sla import sla_text
from cxdesk.widgets.table import DeskTable

FILTER_FIELDS = {
    "days": N_("Days (0 = all)"),
    "from": N_("From YYYY-MM-DD"),
    "to": N_("To YYYY-MM-DD"),
    "team": N_("Team"),
    "owner": N_("Owner ('none')"),
    "status": N_("Status"),
    "priority": N_("Priority"),
    "tag": N_("Tag"),
    "text": N_("Search text"),
}
"""The filter bar's inputs: id suffix -> placeholder."""
SLA_REDRAW_SECONDS = 30.0
"""How often the SLA column is worded again against the clock (it shows minutes)."""


def cell(value: object, column: str = "") -> str:
    """A value as the list shows it: times in the desk's zone, a code (``column`` status,
    priority, channel) by its label, empty for nothing."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return shown_time(value)
    if column in LABELLED:
        return label(value)
    return " ".join(str(value).split())[:60]


def sla_cell(row: TicketRow, now: datetime, theme: Mapping[str, str]) -> Text:
    return sla_text(row.sla.view(now) if row.sla is not None else None, now, theme)


@dataclass(frozen=True)
class ListPage:
    """One read of the list: the page, the counts, and what was asked for."""

    rows: list[TicketRow]
    summary: Summary
    flt: TicketFilter
    sort: Sort
    offset: int


class TicketsScreen(DeskScreen):
    DEFAULT_CSS = """
    TicketsScreen #filter-bar { height: 1; margin: 1 0; }
    TicketsScreen #filter-bar Input { width: 1fr; margin-right: 1; }
    TicketsScreen #summary { padding: 0 1; text-style: bold; }
    TicketsScreen #page-info { padding: 0 1; color: $text-muted; }
    TicketsScreen #tickets { height: 1fr; }
    """
    BINDINGS = [
        Binding("slash", "focus_filter", N_("Filter")),  # first: in sight at 80 columns
        Binding("s", "sort", N_("Sort by column")),
        Binding("right_square_bracket", "next_page", N_("Next page")),
        Binding("left_square_bracket", "previous_page", N_("Prev page")),
        Binding("x", "export", N_("Export")),
        Binding("w", "recall_view", N_("Recall view")),
        Binding("ctrl+s", "save_view", N_("Save view")),
        Binding("escape", "focus_table", N_("To list"), show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.flt = TicketFilter()
        """The filter shown; changed only when a read with it succeeded."""
        self.sort = Sort()
        self.row_offset = 0
        self.page: ListPage | None = None
        """The last page read; None until the first read finishes."""
        self._asked = 0
        """Reads the user asked for that have not finished: the poll waits for them."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filter-bar"):
            for name, placeholder in FILTER_FIELDS.items():
                yield Input(placeholder=_(placeholder), id=f"f-{name}", compact=True)
        yield Label(_("Loading…"), id="summary")
        yield Label("", id="page-info")
        table: DataTable[Any] = DeskTable(id="tickets", cursor_type="cell", zebra_stripes=True)
        for name, heading in LIST_COLUMNS.items():
            table.add_column(_(heading), key=name)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#f-days", Input).value = str(self.flt.last_days or "")
        self.query_one("#tickets", DataTable).focus()
        self.request(self.flt, self.sort, 0)
        self.set_interval(SLA_REDRAW_SECONDS, self.redraw_sla)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw_sla())

    def redraw_sla(self) -> None:
        """The SLA column against the clock, from the page as read (no read)."""
        if self.page is None:
            return
        table: DataTable[Any] = self.query_one("#tickets", DataTable)
        now, theme = self.now(), self.app.theme_variables
        for row in self.page.rows:
            if row.sla is not None and row.key in table.rows:
                table.update_cell(row.key, "sla", sla_cell(row, now, theme))

    def _poll(self) -> None:
        if not self._asked:  # never replace (cancel) a read the user asked for
            self.load(self.flt, self.sort, self.row_offset, quiet=True)

    def request(self, flt: TicketFilter, sort: Sort, offset: int) -> None:
        """Read this filter/sort/page; what is shown changes only if the read succeeds."""
        self._asked += 1
        self.load(flt, sort, offset)

    def reload(self) -> None:
        self._poll()

    # -- reading -------------------------------------------------------------------------------

    def load(self, flt: TicketFilter, sort: Sort, offset: int, quiet: bool = False) -> None:
        """Read a page; a newer read replaces (cancels) this one, whose page is then never
        shown. A ``quiet`` read (the desk changed) says nothing when it fails."""

        def read() -> ListPage:
            now = self.now()  # "the last 30 days" count back from the app's clock
            with read_session(self.engine) as session:
                summary = ticket_summary(session, flt, now=now)
                rows = ticket_page(session, flt, sort=sort, offset=offset, limit=PAGE_SIZE,
                                   now=now, total=summary.total)  # fmt: skip
            return ListPage(rows=rows, summary=summary, flt=flt, sort=sort, offset=offset)

        self.in_thread(read, self._show, group="tickets-load", reading=True,
                       done=None if quiet else self._answered,
                       failed=ignore_failure if quiet else None)  # fmt: skip

    def _answered(self) -> None:
        self._asked = max(0, self._asked - 1)

    def _show(self, page: ListPage) -> None:
        previous = self.page
        self.page, self.flt, self.sort, self.row_offset = page, page.flt, page.sort, page.offset
        self.query_one("#summary", Label).update(page.summary.line())
        last = page.offset + len(page.rows)
        arrow = "↓" if page.sort.descending else "↑"
        rows = _("rows {first}-{last} of {total}").format(
            first=page.offset + 1 if page.rows else 0, last=last, total=page.summary.total
        )
        column = _(LIST_COLUMNS[page.sort.column])
        sorted_by = _("sorted by {column} {arrow}").format(column=column, arrow=arrow)
        self.query_one("#page-info", Label).update(f"{page.flt.describe()} · {rows} · {sorted_by}")
        if previous is not None and previous.rows == page.rows:
            return
        table: DataTable[Any] = self.query_one("#tickets", DataTable)
        cursor = table.cursor_coordinate
        table.clear()
        now, theme = self.now(), self.app.theme_variables
        for row in page.rows:
            cells = [
                sla_cell(row, now, theme) if name == "sla" else cell(getattr(row, name), name)
                for name in LIST_COLUMNS
            ]
            table.add_row(*cells, key=row.key)
        if table.row_count:
            table.move_cursor(row=min(cursor.row, table.row_count - 1), column=cursor.column)

    # -- filter, sort, pages -------------------------------------------------------------------

    def _typed(self, name: str) -> str | None:
        return self.query_one(f"#f-{name}", Input).value.strip() or None

    @on(Input.Submitted)
    def apply_filter(self, event: Input.Submitted | None = None) -> None:
        if event is not None:
            event.stop()
        days_text = self._typed("days")
        try:
            if days_text is not None and not days_text.isdigit():
                raise DeskError(
                    _("days: '{typed}' is not a number of days").format(typed=days_text)
                )
            has_range = self._typed("from") is not None or self._typed("to") is not None
            flt = build_filter(
                base=TicketFilter(last_days=None if has_range else TicketFilter().last_days),
                days=int(days_text) if days_text is not None else None,
                date_from=self._typed("from"),
                date_to=self._typed("to"),
                team=self._typed("team"),
                owner=self._typed("owner"),
                status=self._typed("status"),
                priority=self._typed("priority"),
                tag=self._typed("tag"),
                text=self._typed("text"),
            )
        except DeskError as error:
            self.report(error)
            return
        self.request(flt, self.sort, 0)
        self.query_one("#tickets", DataTable).focus()

    def _fill_filter_bar(self, flt: TicketFilter) -> None:
        values = {
            "days": str(flt.last_days) if flt.last_days else ("" if flt.created_from else "0"),
            "from": str(flt.created_from or ""),
            "to": str(flt.created_to or ""),
            **{name: getattr(flt, name) or "" for name in
               ("team", "owner", "status", "priority", "tag", "text")},
        }  # fmt: skip
        for name, value in values.items():
            self.query_one(f"#f-{name}", Input).value = value

    def action_sort(self) -> None:
        table: DataTable[str] = self.query_one("#tickets", DataTable)
        columns = list(LIST_COLUMNS)
        column = columns[min(table.cursor_column, len(columns) - 1)]
        self._sort_by(column)

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self._sort_by(str(event.column_key.value))

    def _sort_by(self, column: str) -> None:
        descending = not self.sort.descending if column == self.sort.column else False
        self.request(self.flt, Sort(column, descending=descending), 0)

    def action_next_page(self) -> None:
        if self.page is not None and self.row_offset + PAGE_SIZE < self.page.summary.total:
            self.request(self.flt, self.sort, self.row_offset + PAGE_SIZE)

    def action_previous_page(self) -> None:
        if self.row_offset > 0:
            self.request(self.flt, self.sort, max(0, self.row_offset - PAGE_SIZE))

    def action_focus_filter(self) -> None:
        self.query_one("#f-text", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#tickets", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape on the list itself goes back (the app's key: ``cxdesk/explaining.py``)."""
        focused = self.focused
        return not (action == "focus_table" and focused is not None and focused.id == "tickets")

    @on(DataTable.CellSelected)
    def _open(self, event: DataTable.CellSelected) -> None:
        event.stop()
        if event.cell_key.row_key.value:
            self.desk.open_ticket(event.cell_key.row_key.value)

    # -- export and saved views ----------------------------------------------------------------

    def action_export(self) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        default = str(Path.home() / f"cxdesk-tickets-{stamp}.xlsx")

        def chosen(path: str | None) -> None:
            if path:
                self.export(self.flt, self.sort, Path(path).expanduser())

        self.app.push_screen(
            PromptDialog(
                _("Export the filtered list to (.xlsx or .csv)"),
                value=default,
                hint=self.flt.describe(),
            ),
            chosen,
        )

    def export(self, flt: TicketFilter, sort: Sort, path: Path) -> None:
        def written(n: int) -> None:
            said = ngettext("{n} ticket written to {path}", "{n} tickets written to {path}", n)
            self.app.notify(said.format(n=n, path=path), markup=False)

        self.in_thread(lambda: export_tickets(self.engine, flt, path, sort=sort), written,
                       group="tickets-export")  # fmt: skip

    def action_save_view(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.save_view(name, self.flt)

        self.app.push_screen(
            PromptDialog(_("Save this filter as view"), hint=self.flt.describe()), chosen
        )

    def save_view(self, name: str, flt: TicketFilter) -> None:
        def save() -> None:
            with transaction(self.engine) as session:
                save_view(session, actor=self.user, name=name, flt=flt)

        def saved(_nothing: None) -> None:
            self.app.notify(_("View '{name}' saved").format(name=name), markup=False)

        self.in_thread(save, saved, group="tickets-view")

    def action_recall_view(self) -> None:
        self.offer_views()

    def offer_views(self) -> None:
        def read() -> list[str]:
            with read_session(self.engine) as session:
                return [v.name for v in list_views(session, actor=self.user)]

        self.in_thread(read, self._offer_views, group="tickets-view", reading=True)

    def _offer_views(self, names: list[str]) -> None:
        if not names:
            self.app.notify(_("No saved views yet: ctrl+s saves the current filter"))
            return

        def chosen(name: str | None) -> None:
            if name:
                self.recall_view(name)

        hint = _("Views: {names}").format(names=", ".join(names))
        dialog = PromptDialog(_("Recall view"), value=names[0], hint=hint)
        self.app.push_screen(dialog, chosen)

    def recall_view(self, name: str) -> None:
        def read() -> TicketFilter:
            with read_session(self.engine) as session:
                return get_view(session, actor=self.user, name=name)

        self.in_thread(read, self._recalled, group="tickets-view", reading=True)

    def _recalled(self, flt: TicketFilter) -> None:
        self._fill_filter_bar(flt)
        self.request(flt, self.sort, 0)
