"""A small modal asking yes or no before something that cannot be taken back (sending a campaign).

Enter or ``y`` confirms (True); Escape or ``n`` cancels (False).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


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
        Binding("enter,y", "confirm", "Yes"),
        Binding("escape,n", "cancel", "No"),
    ]

    def __init__(self, question: str, *, yes: str = "Enter or y: yes") -> None:
        super().__init__()
        self._question = question
        self._yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Label(self._question, id="confirm-question", markup=False)
            yield Label(f"{self._yes} · Escape or n: cancel", classes="hint", markup=False)

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
