"""The desk explains itself (issue 17 item 6): help, going back, the palette's ticket keys, and
not quitting over a half-typed form. A mixin of the App (``CxDeskApp``).

- ``?`` or F1: help for the screen on top (``screens/help.py``). In a text field ``?`` is typed
  (the field takes the key first) and F1 still opens help.
- Escape goes back, the same way on every screen: a screen opened over another (a ticket, a
  waiting list, a dialog) closes; a screen opened from the palette gives way to the screen it
  replaced (a history, like a browser's back); with nothing to go back to, Escape leads to the
  user's home screen (check-in for a volunteer, queues otherwise), and on the home screen it
  says how to find one's way (a hint). A screen whose Escape first does something nearer (a
  filter field gives the focus back to its list) goes back on the next Escape. Leaving a
  half-typed check-in form this way asks first, as quitting does.
- The palette offers "Open KEY — title" for a ticket's key (``palette_tickets.py``).
- ctrl+q over a half-typed form (check-in, new ticket, a comment or reply dialog) asks "Leave
  without saving?" first; a second ctrl+q there, or Enter, quits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Input

from cxdesk.i18n import N_, _
from cxdesk.palette_tickets import TicketKeys

if TYPE_CHECKING:
    from cxdesk.store.lean import LoginRow
    from cxdesk.store.models import User
    from cxdesk.widgets.confirm_dialog import ConfirmDialog

TOP_LEVEL: dict[str, str] = {
    "QueuesScreen": "Queues",
    "TicketsScreen": "Tickets",
    "KanbanScreen": "Kanban",
    "StreamScreen": "Stream",
    "HistoryScreen": "History",
    "BoardScreen": "Board",
    "InsightsScreen": "Insights",
    "CampaignsScreen": "Campaigns",
    "CheckinScreen": "Check-in",
}
"""The palette's name (``app.SCREENS``) of each screen it opens in place of the one shown."""
HISTORY_LENGTH = 20
FORMS = frozenset({"CheckinScreen", "NewTicketScreen", "ChangeDialog"})
"""Screens whose typed text is lost on quitting (by class name: no import of the store)."""
PREFILLED = frozenset({"extra"})
"""Fields a form fills in itself (``ChangeDialog``'s extra line): not the user's typing."""
HOME_HINT = N_("This is your home screen: ctrl+p opens the palette, ? shows help")


def screen_name(screen: Screen[Any]) -> str | None:
    return TOP_LEVEL.get(type(screen).__name__)


def half_typed(screens: list[Screen[Any]]) -> bool:
    """Whether a form among ``screens`` holds text the user typed and has not saved."""
    from textual.widgets import TextArea  # its document and themes: not before the first paint

    for screen in screens:
        if not any(cls.__name__ in FORMS for cls in type(screen).__mro__):
            continue
        for field in screen.query(Input):
            if field.id not in PREFILLED and field.value.strip():
                return True
        if any(area.text.strip() for area in screen.query(TextArea)):
            return True
    return False


class ExplainingApp(App[None]):
    """Help, Escape and the quit question for the desk's App."""

    COMMANDS = App.COMMANDS | {TicketKeys}
    BINDINGS = [
        # The footer shows one key per action: ``?``, or F1 in a text field (which types ``?``).
        Binding("question_mark", "help", N_("Help")),
        Binding("f1", "help", N_("Help")),
        Binding("escape", "go_back", N_("Back"), show=False),
    ]

    if TYPE_CHECKING:
        user: User | LoginRow | None

        def navigate(self, name: str) -> None: ...

        def refusal(self, name: str) -> str | None: ...

    _going_back = False
    _leave_dialog: ConfirmDialog | None = None
    _leave_confirmed = False

    # -- help ----------------------------------------------------------------------------------

    def action_help(self) -> None:
        """Help for the screen on top."""
        from cxdesk.screens.help import show_help

        show_help(self)

    def may_open_tickets(self) -> bool:
        """Whether the logged-in user may open ticket screens (not a volunteer)."""
        return self.user is not None and self.refusal("Tickets") is None

    # -- going back ----------------------------------------------------------------------------

    @property
    def screen_history(self) -> list[str]:
        """The palette names of the screens replaced so far, the last one last (Escape's)."""
        history: list[str] = self.__dict__.setdefault("_screen_history", [])
        return history

    def home_name(self) -> str:
        return "Check-in" if self.user is not None and self.user.role == "volunteer" else "Queues"

    def switch_screen(self, screen: Screen[Any] | str) -> AwaitComplete:
        """Note the screen being replaced, for Escape (the palette's screens replace the
        one shown: ``CxDeskApp._show``); a new login starts a new history."""
        history = self.screen_history
        if isinstance(screen, Screen) and type(screen).__name__ == "LoginScreen":
            history.clear()
        elif not self._going_back and len(self.screen_stack) > 1:
            shown = screen_name(self.screen_stack[1])
            wanted = screen_name(screen) if isinstance(screen, Screen) else None
            if shown is not None and shown != wanted:
                history.append(shown)
                del history[:-HISTORY_LENGTH]
        return super().switch_screen(screen)

    def action_go_back(self) -> None:
        """Escape: back to the previous screen, else home; a hint on the home screen."""
        if self.user is None or isinstance(self.screen, ModalScreen):
            return
        if len(self.screen_stack) > 2:  # opened over the screen below
            self.pop_screen()
            return
        target = self._back_target()
        if target is None:
            self.notify(_(HOME_HINT), markup=False)
        elif half_typed([self.screen]):  # check-in, half-typed: ask before losing it
            self._ask_to_leave(lambda leave: self._left_for(target, leave))
        else:
            self._back_to(target)

    def _back_target(self) -> str | None:
        """The screen Escape leads to (dropping it from the history), or None on the home
        screen with nothing to go back to."""
        history = self.screen_history
        current = screen_name(self.screen)
        while history:
            previous = history.pop()
            if previous != current and self.refusal(previous) is None:
                return previous
        return self.home_name() if current != self.home_name() else None

    def _left_for(self, target: str, leave: bool | None) -> None:
        self._leave_dialog = None
        if leave:
            self._back_to(target)
        else:  # stays: the next Escape offers the same way back
            self.screen_history.append(target)

    def _back_to(self, name: str) -> None:
        self._going_back = True
        try:
            self.navigate(name)
        finally:
            self._going_back = False

    # -- quitting ------------------------------------------------------------------------------

    def asks_before_quitting(self) -> bool:
        """Whether quitting waits for an answer: a form holds unsaved text, so "Leave without
        saving?" is asked (its yes quits). ctrl+q again while it is asked quits."""
        if self._leave_confirmed or self.screen is self._leave_dialog:
            return False
        if not half_typed(list(self.screen_stack)):
            return False
        self._ask_to_leave(self._leave_answered)
        return True

    def _ask_to_leave(self, answered: Callable[[bool | None], None]) -> None:
        from cxdesk.widgets.confirm_dialog import ConfirmDialog

        self._leave_dialog = ConfirmDialog(
            _("Leave without saving?"), yes=_("Enter or y: leave, losing what you typed")
        )
        self.push_screen(self._leave_dialog, answered)

    def _leave_answered(self, leave: bool | None) -> None:
        self._leave_dialog = None
        if leave:
            self._leave_confirmed = True
            self.call_later(self.run_action, "quit")
