"""The public board for the waiting area: unresolved tickets, most recently updated first.

Customers see their first name and last initial only (it hangs in a public place), the expert
helping them, the product, the ticket key and the last update. Resolved and escalated tickets
drop off; a pull moves a ticket to the top. It reads the desk again by itself every
``poll_seconds`` and never writes: ``BoardApp`` runs it alone, without a login
(``cxdesk board``); inside the desk it is the "Board" screen. While the database is
unreachable it keeps the last rows and shows one line, until a read succeeds again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from rich.text import Text
from sqlalchemy import Engine
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label

from cxdesk.errors import DeskError
from cxdesk.store.db import is_unreachable, read_session
from cxdesk.store.pages import BoardRow, board_rows
from cxdesk.text import printable
from cxdesk.widgets.desk_notice import show_desk_notice
from cxdesk.widgets.table import DeskTable

BOARD_ROWS = 25
BOARD_COLUMNS = {"Customer": 14, "Expert": 20, "Product": 20, "Ticket": 9, "Last update": 11}
"""Heading -> width: fixed, so a long product name never squeezes the customer's."""


class _HasEngine(Protocol):
    engine: Engine
    poll_seconds: float


def board_cells(row: BoardRow) -> tuple[Text, ...]:
    return (
        Text(row.customer, style="bold"),
        Text(row.expert or "waiting", style="" if row.expert else "italic"),
        Text(row.product),
        Text(row.key, style="bold"),
        Text(row.updated_at.astimezone().strftime("%H:%M")),
    )


class BoardScreen(Screen[Any]):
    DEFAULT_CSS = """
    BoardScreen #board-title {
        width: 1fr; content-align: center middle; height: 3; text-style: bold;
        background: $primary; color: $text;
    }
    BoardScreen #board { height: 1fr; }
    BoardScreen #board-clock { width: 1fr; content-align: right middle; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[BoardRow] | None = None
        """The rows shown; None until the first read finishes."""

    @property
    def _source(self) -> _HasEngine:
        return cast(_HasEngine, self.app)

    def compose(self) -> ComposeResult:
        yield Label("Who is being helped", id="board-title")
        table: DataTable[Text] = DeskTable(
            id="board", cursor_type="none", zebra_stripes=True, cell_padding=2
        )
        for heading, width in BOARD_COLUMNS.items():
            table.add_column(heading, width=width)
        yield table
        yield Label("", id="board-clock")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self._source.poll_seconds, self.load)

    def reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="board-load", exit_on_error=False)
    def load(self) -> None:
        try:
            with read_session(self._source.engine) as session:
                rows = board_rows(session, limit=BOARD_ROWS)
        except DeskError as error:
            if is_unreachable(error):  # one line while it lasts, not an error every poll
                self.app.call_from_thread(show_desk_notice, self, True)
            else:
                self.app.notify(printable(str(error)), severity="error", markup=False)
            return
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[BoardRow]) -> None:
        show_desk_notice(self, False)
        clock: Callable[[], datetime] = getattr(self.app, "clock", lambda: datetime.now(UTC))
        self.query_one("#board-clock", Label).update(
            f"Updated {clock().astimezone().strftime('%H:%M:%S')}"
        )
        if rows == self.rows:
            return
        self.rows = rows
        table: DataTable[Text] = self.query_one("#board", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*board_cells(row), key=row.key, height=2)


class BoardApp(App[None]):
    """The board alone, read-only, without a login: ``cxdesk board``."""

    TITLE = "cxdesk board"
    BINDINGS = [Binding("q", "quit", "Quit")]

    def __init__(self, engine: Engine, *, poll_seconds: float = 2.0) -> None:
        super().__init__()
        self.engine = engine
        self.poll_seconds = poll_seconds

    def on_mount(self) -> None:
        self.push_screen(BoardScreen())
