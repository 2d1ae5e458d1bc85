"""The ticket screen's undo of a pull: for ``store.unpull.UNDO_WINDOW`` after the pull that
opened the screen, ``u`` (in the Footer only then) puts the ticket back in its queue and
cancels the customer's messages not yet sent; a notice under the title counts the seconds
down. ``TicketScreen`` binds the key; this class holds what it does.

The countdown runs on the app's clock (``DeskScreen.now``), and the undo is checked by the
store against that same instant, so what the notice says is what the store decides.
"""

from __future__ import annotations

from datetime import datetime

from textual.timer import Timer
from textual.widgets import Static

from cxdesk.i18n import _
from cxdesk.screens.base import DeskScreen
from cxdesk.screens.ticket_view import TicketView
from cxdesk.store.db import transaction
from cxdesk.store.unpull import undo_window_left, unpull
from cxdesk.text import printable

TICK_SECONDS = 1.0


class UndoPullKeys(DeskScreen):
    """What ``u`` does on a ticket screen opened by a pull (see the module)."""

    key: str
    pulled_at: datetime | None
    view: TicketView | None
    _undo_timer: Timer | None = None
    _undoing: bool = False

    def undo_left(self) -> int:
        """Whole seconds left to undo the pull (0: no undo)."""
        if self.pulled_at is None or self._undoing:
            return 0
        user = self.desk.user  # the UI thread: who is logged in (``DeskScreen.user``)
        owner = self.view.record.get("owner") if self.view is not None else None
        if self.view is not None and (user is None or owner != user.username):
            return 0  # no longer mine (a no-show, handed over): nothing of mine to undo
        return int(undo_window_left(self.pulled_at, self.now()) + 0.999)

    def undo_open(self) -> bool:
        return self.undo_left() > 0

    def start_undo_window(self) -> None:
        self._show_undo()
        if self.undo_open():
            self._undo_timer = self.set_interval(TICK_SECONDS, self._show_undo)

    def _show_undo(self) -> None:
        left = self.undo_left()
        note = self.query_one("#undo-note", Static)
        note.display = left > 0
        if left > 0:
            note.update(
                _("Pulled just now: u puts it back in its queue ({seconds} s)").format(seconds=left)
            )
        elif self._undo_timer is not None:
            self._undo_timer.stop()
            self._undo_timer = None
        self.refresh_bindings()

    def action_undo_pull(self) -> None:
        if not self.undo_open():
            self.notify(_("Too late to undo this pull"), severity="warning")
            return
        self._undoing = True
        self._show_undo()
        self._undo(self.now())

    def _undo(self, now: datetime) -> None:
        def undo() -> str:
            with transaction(self.engine) as session:
                return unpull(session, actor=self.user, key=self.key, now=now).summary()

        def undone(summary: str) -> None:
            self.app.notify(printable(summary), markup=False)
            self.dismiss()

        self.in_thread(undo, undone, group="unpull", severity="warning")
