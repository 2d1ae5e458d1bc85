"""The hall board: the walk-in customers waiting (team, position, estimated wait) and those just
called ("Now serving", with the expert's first name), from ``store.hall``.

It hangs in a public place, so customers show as first name and initial only and no ticket key is
printed. Its times are in the desk's zone (``cxdesk.local_time``). It reads the desk again by itself
every ``poll_seconds`` and never writes: ``BoardApp`` runs it alone, without a login (``cxdesk
board``); inside the desk it is the "Board" screen. While the database is unreachable it keeps the
last rows and shows one line, until a read succeeds again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from rich.text import Text
from sqlalchemy import Engine
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label

from cxdesk.i18n import N_, _, translated_bindings
from cxdesk.local_time import shown_zone
from cxdesk.screens.background import Background, Failure
from cxdesk.store.db import read_session
from cxdesk.store.hall import HallBoard, HallServing, HallWaiting, hall_board
from cxdesk.store.waiting import wait_short
from cxdesk.text import printable
from cxdesk.widgets.desk_notice import show_desk_notice
from cxdesk.widgets.table import DeskTable
from cxdesk.widgets.translated_palette import TranslatedPalette

WAITING_COLUMNS = {N_("Customer"): 16, N_("Team"): 22, N_("Position"): 9, N_("Estimate"): 10}
SERVING_COLUMNS = {N_("Customer"): 16, N_("With"): 16, N_("Team"): 22, N_("Since"): 7}
"""Heading -> width: fixed, so a long team name never squeezes the customer's."""
LONE_BOARD_HINT = N_("Escape or q closes the board. ctrl+p opens the palette (theme, keys).")


class _HasEngine(Protocol):
    engine: Engine
    poll_seconds: float


def waiting_cells(row: HallWaiting) -> tuple[Text, ...]:
    return (
        Text(printable(row.customer), style="bold"),
        Text(printable(row.team)),
        Text(str(row.position), style="bold"),
        Text(wait_short(row.wait_minutes)),
    )


def serving_cells(row: HallServing) -> tuple[Text, ...]:
    return (
        Text(printable(row.customer), style="bold"),
        Text(printable(row.expert)),
        Text(printable(row.team)),
        Text(row.since.astimezone(shown_zone()).strftime("%H:%M")),
    )


class BoardScreen(Background, Screen[Any]):
    DEFAULT_CSS = """
    BoardScreen .board-title {
        width: 1fr; content-align: center middle; height: 3; text-style: bold;
        background: $primary; color: $text;
    }
    BoardScreen #board-serving { height: auto; max-height: 12; }
    BoardScreen #board-waiting { height: 1fr; }
    BoardScreen #board-clock { width: 1fr; content-align: right middle; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.board: HallBoard | None = None
        """What the tables show; None until the first read finishes."""

    @property
    def _source(self) -> _HasEngine:
        return cast(_HasEngine, self.app)

    def _clock(self) -> datetime:
        """The app's clock (the desk's, fixed in snapshots); the board alone: now."""
        clock: Callable[[], datetime] = getattr(self.app, "clock", lambda: datetime.now(UTC))
        return clock()

    def compose(self) -> ComposeResult:
        yield Label(_("Now serving"), classes="board-title")
        serving: DataTable[Text] = DeskTable(id="board-serving", cursor_type="none", cell_padding=2)
        for heading, width in SERVING_COLUMNS.items():
            serving.add_column(_(heading), width=width)
        yield serving
        yield Label(_("Waiting"), classes="board-title")
        waiting: DataTable[Text] = DeskTable(
            id="board-waiting", cursor_type="none", zebra_stripes=True, cell_padding=2
        )
        for heading, width in WAITING_COLUMNS.items():
            waiting.add_column(_(heading), width=width)
        yield waiting
        yield Label("", id="board-clock")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self._source.poll_seconds, self.load)

    def reload(self) -> None:
        self.load()

    def load(self) -> None:
        def read() -> HallBoard:
            with read_session(self._source.engine) as session:
                return hall_board(session, now=self._clock())

        self.in_thread(read, self._show, group="board-load", reading=True, unless_running=True)

    def show_failure(self, failure: Failure) -> None:
        if failure.unreachable:  # one line while it lasts, not an error every poll
            show_desk_notice(self, True)
        else:
            super().show_failure(failure)

    def _show(self, board: HallBoard) -> None:
        show_desk_notice(self, False)
        self.query_one("#board-clock", Label).update(
            _("Updated {time}").format(
                time=self._clock().astimezone(shown_zone()).strftime("%H:%M:%S")
            )
        )
        if board == self.board:
            return
        self.board = board
        serving: DataTable[Text] = self.query_one("#board-serving", DataTable)
        serving.clear()
        for row in board.serving:
            serving.add_row(*serving_cells(row), key=row.key)
        waiting: DataTable[Text] = self.query_one("#board-waiting", DataTable)
        waiting.clear()
        for waiter in board.waiting:
            waiting.add_row(*waiting_cells(waiter), key=waiter.key, height=2)


class BoardApp(TranslatedPalette):
    """The board alone, read-only, without a login: ``cxdesk board``. As in the desk, ``?``
    (or F1) shows its help and Escape goes back: here to the shell, as ``q`` does (the board
    is the only screen). Times are in the desk's zone (``cxdesk board`` sets it)."""

    TITLE = "cxdesk board"
    BINDINGS = [
        Binding("q", "quit", N_("Quit")),
        Binding("escape", "quit", N_("Quit"), show=False),
        Binding("question_mark", "help", N_("Help")),
        Binding("f1", "help", N_("Help"), show=False),
    ]

    def __init__(self, engine: Engine, *, poll_seconds: float = 2.0) -> None:
        super().__init__()
        translated_bindings(self)
        self.engine = engine
        self.poll_seconds = poll_seconds

    def on_mount(self) -> None:
        self.push_screen(BoardScreen())

    def action_help(self) -> None:
        from cxdesk.screens.help import show_help

        show_help(self, LONE_BOARD_HINT)
