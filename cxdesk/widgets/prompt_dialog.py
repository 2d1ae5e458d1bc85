"""A small modal asking for one line of text (a file name, a view name), maybe pre-filled.

Enter returns the text (stripped; empty text cancels); Escape cancels (None).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from cxdesk.i18n import N_, _, translated_bindings


class PromptDialog(ModalScreen[str | None]):
    DEFAULT_CSS = """
    PromptDialog { align: center middle; }
    PromptDialog #prompt-dialog {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    PromptDialog .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", N_("Cancel"))]

    def __init__(self, title: str, *, value: str = "", hint: str = "") -> None:
        super().__init__()
        translated_bindings(self)
        self._title = title
        self._value = value
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-dialog"):
            yield Label(self._title, markup=False)
            yield Input(value=self._value, id="prompt-value")
            if self._hint:
                yield Label(self._hint, classes="hint", markup=False)
            yield Label(_("Enter confirms · Escape cancels"), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#prompt-value", Input).focus()

    @on(Input.Submitted)
    def _confirm(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
