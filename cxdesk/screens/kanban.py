"""The kanban: one column per status (new, open, escalated, resolved, then custom ones).

Each column holds a page of cards (key, customer, owner, priority, age, and the SLA state of
a ticket under a policy, redrawn against the clock) and reads the next page when the
highlight reaches its last card, so 10,000 open tickets stay responsive. Left
and right move between columns, up and down between cards; ``shift+left`` / ``shift+right``
move the card to the neighbouring column: a real status change (through ``update_ticket`` in
``unit_of_work``, so workflows fire) with a comment asked for, pre-filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll, Vertical
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Label, OptionList
from textual.widgets.option_list import Option

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.i18n import N_, _
from cxdesk.labels import label
from cxdesk.screens.base import DeskScreen
from cxdesk.store.db import read_session
from cxdesk.store.pages import Card, KanbanColumn, kanban_columns, kanban_page
from cxdesk.store.tickets import format_wait, update_ticket
from cxdesk.text import printable
from cxdesk.widgets.change_dialog import ChangeDialog, ChangeRequest, SaveChange
from cxdesk.widgets.sla import sla_text

CARDS_PER_PAGE = 50
SLA_REDRAW_SECONDS = 30.0
"""How often the cards' SLA is worded again against the clock."""
MAX_CARDS_KEPT = 2_000
"""A column never holds more cards than this, however far one scrolls."""
COLUMN_WIDTH = 26
"""A column's width when the columns do not all fit (80 columns: three): the kanban then
scrolls sideways, keeping the focused column in view."""


@dataclass(frozen=True)
class Board:
    """One read of the kanban: the columns with their counts and loaded cards."""

    columns: list[KanbanColumn]
    cards: dict[str, list[Card]]


class MoveDialog(ChangeDialog):
    """The change dialog with its comment already written (the user may edit it)."""

    def __init__(self, title: str, comment: str, *, save: SaveChange) -> None:
        super().__init__(title, save=save)
        self._comment = comment

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#comment", Input).value = self._comment


def card_text(card: Card, now: datetime, theme: Mapping[str, str]) -> Text:
    """Key and priority, customer, owner and age, then its SLA (a line only with a policy)."""
    customer = card.customer_name or _("(no name)")
    owner = card.owner or _("unowned")
    text = Text.assemble(
        (card.key, "bold"),
        f"  {label(card.priority)}\n",
        f"{printable(customer, lines=False)}\n",
        (f"{owner} · {format_wait(card.created_at, now)}", "dim"),
    )
    if card.sla is not None:
        text.append("\n")
        text.append_text(sla_text(card.sla.view(now), now, theme, compact=True))
    return text


def column_title(column: KanbanColumn) -> str:
    """A column's heading: its status and how many tickets it holds."""
    return f"{label(column.status)} ({column.count})"


class KanbanScreen(DeskScreen):
    DEFAULT_CSS = """
    KanbanScreen #kanban { height: 1fr; }
    KanbanScreen .kanban-column { width: 1fr; border: round $panel; }
    KanbanScreen .kanban-column:focus-within { border: round $primary; }
    KanbanScreen .kanban-title { text-style: bold; padding: 0 1; width: 1fr; }
    KanbanScreen OptionList { height: 1fr; border: none; }
    """
    BINDINGS = [
        # Before the sideways scroll's own left/right (it would scroll, not move the focus).
        Binding("left", "column(-1)", N_("Column"), show=False, priority=True),
        Binding("right", "column(1)", N_("Column"), show=False, priority=True),
        Binding("shift+left", "move(-1)", N_("Move left")),
        Binding("shift+right", "move(1)", N_("Move right")),
        Binding("enter", "open", N_("Open"), show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.board: Board | None = None
        """The kanban as last read; None until the first read finishes."""
        self._want: dict[str, int] = {}
        """How many cards each column should hold (grows as one scrolls down)."""
        self._follow: tuple[str, str] | None = None
        """(status, key) to highlight after the next read: a card just moved."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(_("←/→ column · ↑/↓ card · shift+←/→ move the card · Enter opens"))
        yield HorizontalScroll(id="kanban")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(SLA_REDRAW_SECONDS, self.redraw_sla)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw_sla())

    def redraw_sla(self) -> None:
        """The cards' SLA against the clock, from the cards as read (no read)."""
        if self.board is None:
            return
        now, theme = self.now(), self.app.theme_variables
        for column, options in zip(self.board.columns, self._lists(), strict=False):
            timed = {c.key: c for c in self.board.cards.get(column.status, []) if c.sla}
            for index, option in enumerate(options.options):
                card = timed.get(option.id or "")
                if card is not None:
                    options.replace_option_prompt_at_index(index, card_text(card, now, theme))

    def on_screen_resume(self) -> None:
        self.load()

    def reload(self) -> None:
        self.load()

    # -- reading -------------------------------------------------------------------------------

    def load(self) -> None:
        def read() -> Board:
            with read_session(self.engine) as session:
                columns = kanban_columns(session)
                cards = {
                    c.status: kanban_page(
                        session, c.status, limit=self._want.get(c.status, CARDS_PER_PAGE)
                    )
                    for c in columns
                }
            return Board(columns, cards)

        self.in_thread(read, self._show, group="kanban-load", reading=True)

    def _lists(self) -> list[OptionList]:
        return list(self.query("#kanban OptionList").results(OptionList))

    def _show(self, board: Board) -> None:
        old = self.board
        self.board = board
        statuses = [c.status for c in board.columns]
        now, theme = self.now(), self.app.theme_variables
        if old is None or [c.status for c in old.columns] != statuses:
            self.call_later(self._build_columns, board, now)
            return
        for index, (column, options) in enumerate(zip(board.columns, self._lists(), strict=True)):
            title = self.query_one(f"#title-{index}", Label)
            title.update(column_title(column))
            cards = board.cards[column.status]
            keys = [option.id for option in options.options]
            if (
                old is not None
                and keys == [c.key for c in cards]
                and (old.cards.get(column.status) == cards)
            ):
                continue
            highlighted = options.highlighted
            current = keys[highlighted] if highlighted is not None and keys else None
            options.set_options(Option(card_text(c, now, theme), id=c.key) for c in cards)
            new_keys = [c.key for c in cards]
            if current in new_keys:
                options.highlighted = new_keys.index(current)
            elif cards:
                options.highlighted = min(highlighted or 0, len(cards) - 1)
        if self._follow is not None:
            status, key = self._follow
            self._follow = None
            if status in statuses:
                target = self._lists()[statuses.index(status)]
                keys_there = [c.key for c in board.cards[status]]
                if key in keys_there:  # not when it sorts beyond the loaded page
                    target.highlighted = keys_there.index(key)
                target.focus()

    async def _build_columns(self, board: Board, now: datetime) -> None:
        """New columns (the first read, or statuses changed), built with their cards; the
        column that had the focus (else the first) has it again once they are mounted."""
        container = self.query_one("#kanban", HorizontalScroll)
        focused_index = self._focused_index()
        await container.remove_children()
        columns = []
        for index, column in enumerate(board.columns):
            theme = self.app.theme_variables
            cards = [Option(card_text(c, now, theme), id=c.key) for c in board.cards[column.status]]
            title = column_title(column)
            columns.append(
                Vertical(
                    Label(title, id=f"title-{index}", classes="kanban-title", markup=False),
                    OptionList(*cards, id=f"column-{index}"),
                    classes="kanban-column",
                )
            )
        await container.mount_all(columns)
        self._fit_columns()
        self._focus_column(focused_index or 0)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Columns share the width when they all fit; else each is ``COLUMN_WIDTH`` wide."""
        columns = self.query(".kanban-column")
        fits = len(columns) * COLUMN_WIDTH <= self.size.width
        for column in columns:
            column.styles.width = "1fr" if fits else COLUMN_WIDTH

    @on(events.DescendantFocus, "#kanban OptionList")
    def _keep_in_view(self, event: events.DescendantFocus) -> None:
        """The focused column in view, borders included (the kanban scrolls sideways)."""
        column = event.widget.parent
        if isinstance(column, Widget):
            self.query_one("#kanban", HorizontalScroll).scroll_to_widget(column, animate=False)

    def _focus_column(self, index: int) -> None:
        lists = self._lists()
        if lists:
            target = lists[max(0, min(index, len(lists) - 1))]
            if target.option_count and target.highlighted is None:
                target.highlighted = 0
            target.focus()

    def _focused_index(self) -> int | None:
        for index, options in enumerate(self._lists()):
            if options.has_focus:
                return index
        return None

    @on(OptionList.OptionHighlighted)
    def _more(self, event: OptionList.OptionHighlighted) -> None:
        """Near the end of a column's cards: read its next page."""
        event.stop()
        if self.board is None or event.option_list.id is None:
            return
        index = int(event.option_list.id.split("-")[1])
        column = self.board.columns[index]
        loaded = len(self.board.cards.get(column.status, []))
        if event.option_index >= loaded - 1 and loaded < min(column.count, MAX_CARDS_KEPT):
            self._want[column.status] = min(loaded + CARDS_PER_PAGE, MAX_CARDS_KEPT)
            self.load()

    # -- keys ----------------------------------------------------------------------------------

    def action_column(self, step: int) -> None:
        index = self._focused_index()
        lists = self._lists()
        if not lists:
            return
        target = lists[max(0, min((index or 0) + step, len(lists) - 1))]
        source = lists[index] if index is not None else None
        if source is not None and source.highlighted is not None and target.option_count:
            target.highlighted = min(source.highlighted, target.option_count - 1)
        target.focus()

    def highlighted_card(self) -> tuple[int, str] | None:
        """(column index, ticket key) of the focused column's highlighted card."""
        index = self._focused_index()
        if index is None:
            return None
        options = self._lists()[index]
        if options.highlighted is None or not options.option_count:
            return None
        key = options.get_option_at_index(options.highlighted).id
        return (index, key) if key else None

    def action_open(self) -> None:
        found = self.highlighted_card()
        if found is not None:
            self.desk.open_ticket(found[1])

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.desk.open_ticket(event.option.id)

    def action_move(self, step: int) -> None:
        found = self.highlighted_card()
        if found is None or self.board is None:
            self.notify(_("No card to move"), severity="warning")
            return
        index, key = found
        target_index = index + step
        if not 0 <= target_index < len(self.board.columns):
            self.notify(_("No column that way"), severity="warning")
            return
        source = self.board.columns[index].status
        target = self.board.columns[target_index].status
        engine, actor = self.engine, self.user
        # The card as the user sees it: a move over someone else's change since is refused
        # (who and what, in the dialog), as the ticket screen's saves are.
        seen = next((c.version for c in self.board.cards.get(source, []) if c.key == key), None)

        def save(request: ChangeRequest) -> None:  # in the dialog's worker; refusals stay there
            with unit_of_work(engine) as session:
                update_ticket(session, actor=actor, key=key, comment=request.comment,
                              changes={"status": target}, if_version=seen)  # fmt: skip

        def saved(request: ChangeRequest | None) -> None:
            if request is not None:
                self.notify(_("{key} moved to {status}").format(key=key, status=target),
                            markup=False)  # fmt: skip
                self._follow = (target, key)
                self.load()

        comment = _("Moved from {source} to {target} on the kanban").format(
            source=source, target=target
        )
        title = _("Move {key} to {status}").format(key=key, status=target)
        self.app.push_screen(MoveDialog(title, comment, save=save), saved)
