"""The queues screen (experts' home): every queue's waiting count and the estimated wait of the
next customer to join it (``store.waiting``), how many of its team are available
(``store.presence``), its waiting tickets' SLA (how many are breached or in warning, else
the nearest due time: ``store.sla_display.queue_sla``), pull next, my open tickets.

Both tables are read again in a worker whenever the app's change watcher says the desk changed
(within about a second of a colleague's pull or a new check-in, on any terminal); the waits are
redrawn against the app's clock every half minute (read again then, on a desk with SLAs:
a waiting ticket turns breached with the clock). Only ``n`` pulls: on a queue, its next
ticket; on the "Any of my teams" row at the top, the most urgent ticket across the expert's
teams (``store.pull.pull_any``); the ticket opens with ``u`` to undo the pull for a few
seconds. Enter on a queue opens its waiting list (``screens.waiting_list``, read-only), so an
Enter pressed by mistake texts no customer; Enter on one of my tickets opens it. The cursor
starts on the first queue, below the "Any" row.

Drawn before the store has loaded (``cxdesk run``: ``desk_opening``), the first fill comes from
the lean reader (``store.lean.LeanDesk.first_fill``: the queues with their waiting counts and
oldest wait, the user's teams, their open tickets); the estimate, availability and SLA show
``PENDING`` until the store has loaded, which the first fill starts, and the tables are read
again then. ``n`` and Enter wait for the store if pressed before.

A volunteer sees the queues read-only (issue 15 item 8: to answer "how long?" at the desk):
the counts and estimates, no pull, no waiting list, no ticket to open, no "my tickets" table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Label

from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, ngettext
from cxdesk.labels import field_value
from cxdesk.screens.base import DeskScreen, shown_time
from cxdesk.store.lean import FirstFill, QueueStats, format_wait, wait_short
from cxdesk.text import printable
from cxdesk.widgets.footer import DeskFooter
from cxdesk.widgets.table import DeskTable

# SQLAlchemy and the store load after the first fill (the module docstring): not imported here.
if TYPE_CHECKING:
    from sqlmodel import Session

    from cxdesk.store.presence import TeamPresence
    from cxdesk.store.sla_display import QueueSla

logger = logging.getLogger(__name__)
OWN_TEAM_MARK = "●"
ANY_ROW = "\x00any"
"""Row key of "Any of my teams" (no queue name has a NUL: ``text_problem`` refuses it)."""
ANY_LABEL = N_("Any of my teams")
PENDING = "…"
"""A cell the store has not read yet (the estimate, availability, SLA of a lean first fill)."""
VOLUNTEER = "volunteer"  # store.models.Role's value
WAIT_REDRAW_SECONDS = 30.0
MY_TICKETS_HINT = N_(
    "My open tickets. Waiting tickets live in the queues above: press n to pull the next one."
)
QUEUE_COLUMNS = (
    " ",
    N_("Queue"),
    N_("Waiting"),
    N_("Estimate"),
    N_("Available"),
    N_("SLA"),
    N_("Oldest wait"),
    N_("Team"),
)
MINE_COLUMNS = (N_("Key"), N_("Title"), N_("Status"), N_("Priority"), N_("Team"), N_("Updated"))


@dataclass(frozen=True)
class QueuesSnapshot:
    """What the screen shows, read in one worker pass."""

    queues: list[QueueStats]
    my_teams: frozenset[str]
    my_tickets: list[dict[str, object]]
    waits: dict[str, float | None] | None = None
    """Per queue: the estimated wait of the next customer to join it (``store.waiting``);
    None in a lean first fill (the store still loading)."""
    presence: dict[str, TeamPresence] = field(default_factory=dict)
    """Per team: its members available now, of its active members (``store.presence``)."""
    sla: dict[str, QueueSla] = field(default_factory=dict)
    """Per team: its waiting tickets breached and in warning (``store.sla_display``)."""

    @property
    def complete(self) -> bool:
        """Every column read (not a lean first fill)."""
        return self.waits is not None

    @classmethod
    def first(cls, fill: FirstFill) -> QueuesSnapshot:
        """A lean first fill's (``store.lean``)."""
        return cls(fill.queues, fill.my_teams, fill.my_tickets)


class QueuesScreen(DeskScreen):
    # The queues as high as their rows (and the scrollbar under them, when an 80-column
    # terminal scrolls them sideways: it hid the last row at 1fr), up to most of the screen;
    # my tickets below, in what is left.
    DEFAULT_CSS = """
    QueuesScreen #queues { height: auto; max-height: 60%; }
    QueuesScreen #mine { height: 1fr; }
    QueuesScreen #mine-hint { color: $text-muted; margin-top: 1; width: 1fr; }
    """
    BINDINGS = [
        Binding("n", "pull", N_("Pull next")),
        Binding("enter", "open_row", N_("Waiting list")),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: QueuesSnapshot | None = None
        """What the tables show, as last read."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(_("Queues ({mark} = my teams)").format(mark=OWN_TEAM_MARK))
        queues: DataTable[Any] = DeskTable(id="queues", cursor_type="row")
        # What the desk asks first (how many, how long, who can take them) before the rest:
        # an 80-column terminal shows up to the SLA; the team is mostly the queue's name.
        queues.add_columns(*(_(column) for column in QUEUE_COLUMNS))
        yield queues
        yield Label(_(MY_TICKETS_HINT), id="mine-hint")
        mine: DataTable[str] = DeskTable(id="mine", cursor_type="row")
        mine.add_columns(*(_(column) for column in MINE_COLUMNS))
        yield mine
        yield DeskFooter()

    @property
    def read_only(self) -> bool:
        """A volunteer's view: the queues only, nothing to pull or open."""
        user = self.desk.user
        return user is None or user.role == VOLUNTEER

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """None of the screen's own keys for a volunteer (hidden from the footer too)."""
        return not (self.read_only and action in self._own_actions())

    def _own_actions(self) -> set[str]:
        return {b.action for found in self._bindings.key_to_bindings.values() for b in found}

    def on_mount(self) -> None:
        if self.read_only:
            for hidden in self.query("#mine-hint, #mine"):
                hidden.display = False
        self.query_one("#queues", DataTable).focus()
        self.set_interval(WAIT_REDRAW_SECONDS, self._redraw)

    def on_screen_resume(self) -> None:
        self.refresh_tables()

    def reload(self) -> None:
        self.refresh_tables()

    def _redraw(self) -> None:
        if self.snapshot is not None and self.snapshot.sla:
            self.refresh_tables()  # which waiting tickets are breached changes with the clock
        elif self.snapshot is not None:
            self._show(self.snapshot)

    def refresh_tables(self) -> None:
        fill = self.desk.take_home_fill()
        if fill is not None:  # read by the login's worker just now (desk_opening)
            self._show(QueuesSnapshot.first(fill))
            return

        def read() -> QueuesSnapshot:
            lean, user = self.desk.lean_desk(), self.desk.user
            if lean is not None and user is not None:  # the store still loading
                try:
                    return QueuesSnapshot.first(lean.first_fill(user.id, user.role))
                except DeskError as error:  # the driver's: the store reads (and says so)
                    logger.warning("the lean first fill: %s", error)
            return self._read_all()

        self.in_thread(read, self._show, group="queues-poll", reading=True)

    def _read_all(self) -> QueuesSnapshot:
        """Every column, through the store (in a worker)."""
        from cxdesk.store.db import read_session
        from cxdesk.store.directory import list_statuses, user_teams
        from cxdesk.store.models import StatusCategory
        from cxdesk.store.presence import team_presence
        from cxdesk.store.sla_display import queue_sla
        from cxdesk.store.tickets import list_tickets, tickets_to_dicts
        from cxdesk.store.waiting import queue_outlooks

        engine, user = self.engine, self.user  # the store's User once it has loaded
        with read_session(engine) as session:
            open_statuses = {  # paused ones too: still theirs, waiting on the customer
                s.name for s in list_statuses(session) if s.category != StatusCategory.resolved
            }
            mine = [
                t for t in list_tickets(session, owner=user.username) if t.status in open_statuses
            ]
            outlooks = queue_outlooks(session)
            return QueuesSnapshot(
                queues=[outlook.stats for outlook in outlooks],
                my_teams=frozenset(team.name for team in user_teams(session, user)),
                my_tickets=tickets_to_dicts(session, mine),
                waits={outlook.stats.name: outlook.next_wait for outlook in outlooks},
                presence=team_presence(session),
                sla=_by_team_name(session, queue_sla(session, now=self.now())),
            )

    def _show(self, snapshot: QueuesSnapshot) -> None:
        self.snapshot = snapshot
        now = self.now()
        queues: DeskTable[Any] = self.query_one("#queues", DeskTable)
        first_fill = queues.row_count == 0
        # A volunteer pulls nothing: no "Any of my teams" row (they are on no team either).
        theme = self.app.theme_variables
        anywhere = [] if self.read_only else [_any_row(snapshot, now, theme)]
        rows = anywhere + [
            (
                OWN_TEAM_MARK if q.team in snapshot.my_teams else "",
                q.name,
                str(q.waiting),
                wait_short(snapshot.waits.get(q.name)) if snapshot.waits is not None else PENDING,
                _available(snapshot.presence, q.team) if snapshot.complete else PENDING,
                _sla_cell(snapshot.sla.get(q.team), now, theme) if snapshot.complete else PENDING,
                format_wait(q.oldest_created, now),
                q.team,
            )
            for q in snapshot.queues
        ]
        any_key = [ANY_ROW] if anywhere else []
        _replace_rows(queues, rows, [*any_key, *(q.name for q in snapshot.queues)])
        if first_fill and anywhere and queues.row_count > 1:
            queues.move_cursor(row=1)  # the first queue: `n` pulls from it, as it always did
        mine: DeskTable[str] = self.query_one("#mine", DeskTable)
        ticket_rows = [
            (
                *(
                    field_value(name, t[name])
                    for name in ("key", "title", "status", "priority", "team")
                ),
                shown_time(t["updated_at"]),
            )
            for t in snapshot.my_tickets
        ]
        _replace_rows(mine, ticket_rows, [str(t["key"]) for t in snapshot.my_tickets])
        if not snapshot.complete:  # drawn: now the store (``desk_opening``), for the rest,
            # once the tables have measured their new rows too (DeskTable: a second refresh),
            # which the store's loading would otherwise slow down, cut short on screen.
            self.call_after_refresh(self.call_after_refresh, self.desk.load_store)

    def highlighted_queue(self) -> str | None:
        table: DataTable[str] = self.query_one("#queues", DataTable)
        if table.row_count == 0:
            return None
        row_key, _column = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def action_pull(self) -> None:
        if self.read_only:  # Enter on a row (RowSelected) comes here without a key check
            return
        if self._open_mine():
            return
        queue = self.highlighted_queue()
        if queue is None:
            self.notify(_("No queue to pull from"), severity="warning")
            return
        self.pull(None if queue == ANY_ROW else queue)

    def action_open_row(self) -> None:
        """Enter: my ticket under the cursor opens; a queue's waiting list opens."""
        if self.read_only:  # Enter on a row (RowSelected) comes here without a key check
            return
        if self._open_mine():
            return
        queue = self.highlighted_queue()
        if queue is None:
            return
        if queue == ANY_ROW:
            self.notify(_("n pulls the most urgent ticket of your teams; Enter on a queue "
                          "shows its waiting list"), markup=False)  # fmt: skip
            return
        from cxdesk.screens.waiting_list import WaitingListScreen

        self.app.push_screen(WaitingListScreen(queue))

    def _open_mine(self) -> bool:
        """Open my ticket under the cursor when my tickets' table has the focus."""
        mine: DataTable[str] = self.query_one("#mine", DataTable)
        if not mine.has_focus:
            return False
        if mine.row_count:
            row_key, _column = mine.coordinate_to_cell_key(mine.cursor_coordinate)
            if row_key.value:
                self.desk.open_ticket(row_key.value)
        return True

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_row()

    def pull(self, queue: str | None) -> None:
        """Pull from ``queue`` (None: any of my teams) and open the ticket, undoable a while."""

        def pull() -> tuple[str, str]:
            from cxdesk.engine.dispatch import PulledButNotDispatched, pull_and_dispatch

            try:
                return pull_and_dispatch(self.engine, actor=self.user, queue_name=queue).key, ""
            except PulledButNotDispatched as warning:  # the ticket is the expert's all the same
                return warning.pulled.key, str(warning)

        def pulled(key_and_warning: tuple[str, str]) -> None:
            key, warning = key_and_warning
            if warning:
                self.app.notify(printable(warning), severity="warning", markup=False)
            self.desk.open_ticket(key, pulled_at=self.now())

        self.in_thread(pull, pulled, group="pull", severity="warning")


def _any_row(
    snapshot: QueuesSnapshot, now: datetime, theme: Mapping[str, str]
) -> tuple[str | Text, ...]:
    """ "Any of my teams": what waits in my teams' queues (a team counted once)."""
    teams = {q.team: q for q in snapshot.queues if q.team in snapshot.my_teams}
    oldest = [t.oldest_created for t in teams.values() if t.oldest_created is not None]
    return (
        OWN_TEAM_MARK if teams else "",
        _(ANY_LABEL),
        str(sum(t.waiting for t in teams.values())),
        "",
        "",
        _sla_cell(_together([snapshot.sla[t] for t in teams if t in snapshot.sla]), now, theme)
        if snapshot.complete
        else PENDING,
        format_wait(min(oldest), now) if oldest else "",
        ngettext("{n} team", "{n} teams", len(teams)).format(n=len(teams)),
    )


def _by_team_name(session: Session, by_id: dict[int, QueueSla]) -> dict[str, QueueSla]:
    from cxdesk.store.directory import list_teams

    names = {team.id: team.name for team in list_teams(session)}
    return {names[team_id]: sla for team_id, sla in by_id.items() if team_id in names}


def _together(slas: list[QueueSla]) -> QueueSla | None:
    """Several teams' waiting tickets as one (the "Any of my teams" row)."""
    if not slas:
        return None
    from cxdesk.store.sla_display import QueueSla

    due = [s.nearest_due for s in slas if s.nearest_due is not None]
    breached, warning = sum(s.breached for s in slas), sum(s.warning for s in slas)
    return QueueSla(breached, warning, min(due) if due else None)


def _sla_cell(sla: QueueSla | None, now: datetime, theme: Mapping[str, str]) -> Text:
    """A queue's SLA: its waiting tickets breached and in warning, in the worst one's style."""
    if sla is None:
        return Text("")
    from cxdesk.widgets.sla import state_style

    words, state = sla.words(now)
    return Text(words, style=state_style(state, theme)) if state else Text(words)


def _available(presence: dict[str, TeamPresence], team: str) -> str:
    found = presence.get(team)
    return found.short() if found else ""


def _replace_rows(
    table: DeskTable[Any], rows: Sequence[tuple[str | Text, ...]], keys: Sequence[str]
) -> None:
    """Show ``rows`` keeping the cursor on the same row; untouched when nothing changed.
    What changed is measured at once (``DeskTable.measure_now``): drawn once, at its widths."""
    current = [tuple(table.get_row_at(i)) for i in range(table.row_count)]
    if current == [tuple(row) for row in rows] and len(table.rows) == len(keys):
        if not keys:
            table.clear()  # read, and empty: the table says so (widgets/empty_note.py)
            table.measure_now()
        return
    cursor = table.cursor_row
    table.clear()
    for key, row in zip(keys, rows, strict=True):
        table.add_row(*row, key=key)
    table.measure_now()
    if table.row_count:
        table.move_cursor(row=min(cursor, table.row_count - 1))
