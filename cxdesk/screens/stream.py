"""The stream: every ticket event, newest first, live, filtered by team and kind.

The newest page is read again whenever the desk changes (``DeskChanged``) while it is
shown; ``]`` pages back to older events (the stream then holds still) and ``[`` returns to the
live page. Enter opens the event's ticket.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Footer, Header, Input, Label

from cxdesk.i18n import N_, _, ngettext
from cxdesk.labels import event_detail, event_label
from cxdesk.screens.background import ignore_failure
from cxdesk.screens.base import DeskScreen
from cxdesk.screens.tickets import cell
from cxdesk.store.db import read_session
from cxdesk.store.directory import get_team
from cxdesk.store.events import KINDS
from cxdesk.store.pages import StreamEvent, stream_page
from cxdesk.store.views import PAGE_SIZE
from cxdesk.widgets.table import DeskTable

STREAM_COLUMNS = (N_("When"), N_("Ticket"), N_("Team"), N_("Who"), N_("What"), N_("From"),
                  N_("To"), N_("Detail"))  # fmt: skip


@dataclass(frozen=True)
class StreamFilter:
    team: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class StreamRead:
    events: list[StreamEvent]
    flt: StreamFilter
    before_id: int | None


class StreamScreen(DeskScreen):
    DEFAULT_CSS = """
    StreamScreen #stream-filters { height: 1; margin: 1 0; }
    StreamScreen #stream-filters Input { width: 1fr; margin-right: 1; }
    StreamScreen #stream-info { padding: 0 1; color: $text-muted; }
    StreamScreen #stream { height: 1fr; }
    """
    BINDINGS = [
        Binding("right_square_bracket", "older", N_("Older")),
        Binding("left_square_bracket", "live", N_("Live")),
        Binding("slash", "focus_filter", N_("Filter")),
        Binding("escape", "focus_table", N_("To stream"), show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.flt = StreamFilter()
        self.before_id: int | None = None
        """None: the live page; else the page of events older than this id."""
        self.read: StreamRead | None = None
        self._asked = 0
        """Reads the user asked for that have not finished: the live poll waits for them."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="stream-filters"):
            yield Input(placeholder=_("Team"), id="s-team", compact=True)
            yield Input(
                placeholder=_("Kind (e.g. {kind})").format(kind="ticket.status_changed"),
                id="s-kind",
                compact=True,
                suggester=SuggestFromList(sorted(KINDS)),
            )
        yield Label(_("Loading…"), id="stream-info")
        table: DataTable[str] = DeskTable(id="stream", cursor_type="row", zebra_stripes=True)
        table.add_columns(*(_(title) for title in STREAM_COLUMNS))
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stream", DataTable).focus()
        self.request(self.flt, None)

    def reload(self) -> None:
        if self.before_id is None and not self._asked:  # never cancel a read the user asked for
            self.load(self.flt, None, quiet=True)

    def request(self, flt: StreamFilter, before_id: int | None) -> None:
        self._asked += 1
        self.load(flt, before_id)

    def _answered(self) -> None:
        self._asked = max(0, self._asked - 1)

    def load(self, flt: StreamFilter, before_id: int | None, quiet: bool = False) -> None:
        """Read a page; a newer read replaces (cancels) this one, never shown then. A
        ``quiet`` read (the desk changed) says nothing when it fails."""

        def read() -> StreamRead:
            with read_session(self.engine) as session:
                if flt.team:
                    get_team(session, flt.team)  # an unknown team is named, not an empty list
                events = stream_page(session, team=flt.team, kind=flt.kind,
                                     before_id=before_id, limit=PAGE_SIZE)  # fmt: skip
            return StreamRead(events, flt, before_id)

        self.in_thread(read, self._show, group="stream-load", reading=True,
                       done=None if quiet else self._answered,
                       failed=ignore_failure if quiet else None)  # fmt: skip

    def _show(self, read: StreamRead) -> None:
        previous = self.read
        self.read, self.flt, self.before_id = read, read.flt, read.before_id
        where = (
            _("live, newest first")
            if read.before_id is None
            else _("older events (] older, [ live)")
        )
        count = len(read.events)
        parts = [ngettext("{n} event", "{n} events", count).format(n=count), where]
        if read.flt.team:
            parts.append(_("team {value}").format(value=read.flt.team))
        if read.flt.kind:
            parts.append(_("kind {value}").format(value=read.flt.kind))
        self.query_one("#stream-info", Label).update(" · ".join(parts))
        if previous is not None and previous.events == read.events:
            return
        table: DataTable[str] = self.query_one("#stream", DataTable)
        table.clear()
        for e in read.events:
            table.add_row(
                cell(e.created_at), e.ticket_key or "", e.team or "", e.actor or _("system"),
                event_label(e.kind), cell(e.from_value, e.field_name or ""),
                cell(e.to_value, e.field_name or ""), cell(event_detail(e.kind, e.detail)),
                key=str(e.id),
            )  # fmt: skip

    @on(Input.Submitted)
    def apply_filter(self, event: Input.Submitted) -> None:
        event.stop()
        team = self.query_one("#s-team", Input).value.strip() or None
        kind = self.query_one("#s-kind", Input).value.strip() or None
        self.request(StreamFilter(team=team, kind=kind), None)
        self.query_one("#stream", DataTable).focus()

    def action_older(self) -> None:
        if self.read is not None and self.read.events:
            self.request(self.flt, self.read.events[-1].id)

    def action_live(self) -> None:
        self.request(self.flt, None)

    def action_focus_filter(self) -> None:
        self.query_one("#s-team", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#stream", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape on the list itself goes back (the app's key: ``cxdesk/explaining.py``)."""
        focused = self.focused
        return not (action == "focus_table" and focused is not None and focused.id == "stream")

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.read is None:
            return
        chosen = next((e for e in self.read.events if str(e.id) == event.row_key.value), None)
        if chosen is not None and chosen.ticket_key:
            self.desk.open_ticket(chosen.ticket_key)
