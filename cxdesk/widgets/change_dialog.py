"""A small modal asking for one change (a value from a list, optional) and its comment.

Every ticket update needs a comment, so every action on the ticket screen goes through this
dialog. Enter in the comment (or attachments) field saves; Escape cancels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select


@dataclass(frozen=True)
class ChangeRequest:
    """What the dialog returns: the chosen value (None without a list), comment, file paths."""

    value: str | None
    comment: str
    attachment_paths: list[str] = field(default_factory=list)


class ChangeDialog(ModalScreen[ChangeRequest | None]):
    DEFAULT_CSS = """
    ChangeDialog { align: center middle; }
    ChangeDialog #dialog {
        width: 70; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    ChangeDialog .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        *,
        choices: Sequence[tuple[str, str]] | None = None,
        current: str | None = None,
        with_attachments: bool = False,
    ) -> None:
        super().__init__()
        self._title = title
        self._choices = list(choices) if choices is not None else None
        self._current = current
        self._with_attachments = with_attachments

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, markup=False)
            if self._choices is not None:
                values = {value for _, value in self._choices}
                start = self._current if self._current in values else Select.NULL
                yield Select(self._choices, value=start, allow_blank=start is Select.NULL,
                             id="value")  # fmt: skip
            yield Input(placeholder="Comment (required)", id="comment")
            if self._with_attachments:
                yield Input(placeholder="Attachment paths, comma-separated", id="attachments")
            yield Label("Enter saves · Escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#value" if self._choices is not None else "#comment").focus()

    @on(Input.Submitted)
    def _save(self) -> None:
        value: str | None = None
        if self._choices is not None:
            select = self.query_one("#value", Select)
            value = None if select.is_blank() else str(select.value)
        paths: list[str] = []
        if self._with_attachments:
            text = self.query_one("#attachments", Input).value
            paths = [part.strip() for part in text.split(",") if part.strip()]
        comment = self.query_one("#comment", Input).value
        self.dismiss(ChangeRequest(value=value, comment=comment, attachment_paths=paths))

    def action_cancel(self) -> None:
        self.dismiss(None)
