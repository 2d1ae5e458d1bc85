"""A small modal asking yes or no before something that cannot be taken back (sending a campaign).

Enter or ``y`` confirms (True); Escape or ``n`` cancels (False).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from cxdesk.i18n import N_, _, translated_bindings

YES = N_("Enter or y: yes")


class ConfirmDialog(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog #confirm-dialog {
        width: 80; height: auto; border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmDialog #confirm-question { width: 100%; }
    ConfirmDialog .hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [
        Binding("enter,y", "confirm", N_("Yes")),
        Binding("escape,n", "cancel", N_("No")),
    ]

    def __init__(self, question: str, *, yes: str = YES) -> None:
        super().__init__()
        translated_bindings(self)
        self._question = question
        self._yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(self._question, id="confirm-question", markup=False)
            hint = _("{yes} · Escape or n: cancel").format(yes=_(self._yes))
            yield Label(hint, classes="hint", markup=False)

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
