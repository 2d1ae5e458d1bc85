"""A queue's waiting list, read-only: who waits, in the order its pulls take them, with each
one's position, SLA state and estimated wait (``store.waiting.queue_waiting``).

Opened by Enter on a queue of the queues screen (Escape goes back). Read in a worker when it
opens and whenever the app's change watcher says the desk changed; ``n`` pulls the queue's
next ticket, as on the queues screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Label

from cxdesk.i18n import N_, _
from cxdesk.labels import label
from cxdesk.screens.base import DeskScreen
from cxdesk.store.models import Ticket
from cxdesk.store.sla_display import SlaTimes
from cxdesk.store.tickets import format_wait
from cxdesk.store.waiting import queue_waiting, wait_short
from cxdesk.text import printable
from cxdesk.widgets.sla import sla_text
from cxdesk.widgets.table import DeskTable

SLA_REDRAW_SECONDS = 30.0
COLUMNS = ("#", N_("Key"), N_("SLA"), N_("Title"), N_("Priority"), N_("Waiting"), N_("Estimate"))


@dataclass(frozen=True)
class WaitingRow:
    position: int
    key: str
    title: str
    priority: str
    created_at: datetime
    wait_minutes: float | None
    sla: SlaTimes | None


def read_waiting_list(session: Session, queue: str) -> list[WaitingRow]:
    """The queue's waiting tickets in pull order, with their titles: two statements."""
    waiting = queue_waiting(session, queue)
    ids = [w.ticket_id for w in waiting]
    tickets = {t.id: t for t in session.exec(select(Ticket).where(col(Ticket.id).in_(ids))).all()}
    return [
        WaitingRow(
            w.position,
            w.key,
            tickets[w.ticket_id].title,
            tickets[w.ticket_id].priority,
            tickets[w.ticket_id].created_at,
            w.wait_minutes,
            SlaTimes.of(tickets[w.ticket_id]),
        )  # fmt: skip
        for w in waiting
        if w.ticket_id in tickets
    ]


class WaitingListScreen(DeskScreen):
    DEFAULT_CSS = """
    WaitingListScreen #waiting { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "back", N_("Back")), Binding("n", "pull", N_("Pull next"))]

    def __init__(self, queue: str) -> None:
        super().__init__()
        self.queue = queue
        self.rows: list[WaitingRow] | None = None
        """The list as last read; None until the first read finishes."""

    def compose(self) -> ComposeResult:
        yield Header()
        loading = _("Waiting in {queue} (loading…)").format(queue=self.queue)
        yield Label(printable(loading, lines=False),
                    id="waiting-title", markup=False)  # fmt: skip
        table: DataTable[Any] = DeskTable(id="waiting", cursor_type="row")
        table.add_columns(*(_(column) for column in COLUMNS))
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#waiting", DataTable).focus()
        self.reload()
        self.set_interval(SLA_REDRAW_SECONDS, self._redraw)

    def _redraw(self) -> None:
        """The waits and SLA states against the clock, from the list as read."""
        if self.rows is not None:
            self._show(self.rows)

    def reload(self) -> None:
        queue = self.queue
        self.read_then(lambda session: read_waiting_list(session, queue), self._show)

    def _show(self, rows: list[WaitingRow]) -> None:
        self.rows = rows
        now = self.now()
        title = (_("Waiting in {queue}: {n}") if rows else _("Nobody waits in {queue}")).format(
            queue=self.queue, n=len(rows)
        )
        self.query_one("#waiting-title", Label).update(printable(title, lines=False))
        table: DataTable[Any] = self.query_one("#waiting", DataTable)
        cursor = table.cursor_row
        table.clear()
        theme = self.app.theme_variables
        for row in rows:
            sla = sla_text(row.sla.view(now) if row.sla else None, now, theme)
            table.add_row(str(row.position), row.key, sla, printable(row.title, lines=False),
                          label(row.priority), format_wait(row.created_at, now),
                          wait_short(row.wait_minutes), key=row.key)  # fmt: skip
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def action_back(self) -> None:
        self.dismiss()

    def action_pull(self) -> None:
        from cxdesk.screens.queues import QueuesScreen

        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        if isinstance(below, QueuesScreen):
            below.pull(self.queue)
