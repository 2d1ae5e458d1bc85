"""A small modal asking for one change and the comment every ticket update needs.

Optionally: a value from a list (status, priority, team...), an owner picked from the chosen
team's members (the team's only member is preselected), one more line of text (an estimated
date...), and attachment file paths. Enter in the comment (or attachments) field saves: the
dialog runs the caller's ``save`` in a thread worker and closes only when it succeeded; a
refused change is shown inside the dialog, with everything typed kept. Escape cancels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select

from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, translated_bindings
from cxdesk.labels import owner_choices
from cxdesk.screens.background import Background, Failure
from cxdesk.text import printable

NOBODY = N_("(nobody: back to the queue)")
COMMENT_PROMPT = N_("Comment (required)")


@dataclass(frozen=True)
class ChangeRequest:
    """What the dialog asks for: the chosen value (None without a list), the owner (None when
    not asked, "" for nobody), the comment, attachment file paths and the extra line."""

    value: str | None
    comment: str
    attachment_paths: list[str] = field(default_factory=list)
    owner: str | None = None
    extra: str = ""


@dataclass(frozen=True)
class DialogWords:
    """What the dialog says while it saves, when the change is refused, and in its hint
    (catalog text, ``N_``: translated where shown)."""

    pending: str = N_("Saving…")
    refused: str = N_("Not saved")
    hint: str = N_("Enter saves · Escape cancels")


SaveChange = Callable[[ChangeRequest], None]
"""Stores the change (blocking; runs in a thread worker); raises ``DeskError`` to refuse it."""


class ChangeDialog(Background, ModalScreen[ChangeRequest | None]):
    DEFAULT_CSS = """
    ChangeDialog { align: center middle; }
    ChangeDialog #dialog {
        width: 76; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    ChangeDialog .hint { color: $text-muted; }
    ChangeDialog #dialog-error { color: $error; height: auto; width: 100%; }
    """
    BINDINGS = [Binding("escape", "cancel", N_("Cancel"))]

    def __init__(
        self,
        title: str,
        *,
        save: SaveChange,
        choices: Sequence[tuple[str, str]] | None = None,
        current: str | None = None,
        members_by_team: Mapping[str, Sequence[str]] | None = None,
        names: Mapping[str, str] | None = None,
        current_owner: str = "",
        with_attachments: bool = False,
        extra: tuple[str, str] | None = None,
        comment_prompt: str = COMMENT_PROMPT,
        words: DialogWords | None = None,
        focus_comment: bool = False,
    ) -> None:
        """``extra``: (placeholder, value) of one more line, asked before the comment;
        ``words``: what the dialog says while saving, when refused and in its hint (a message
        is sent, not saved); ``focus_comment``: start in the comment, not the list."""
        super().__init__()
        translated_bindings(self)
        self._title = title
        self._save = save
        self._choices = list(choices) if choices is not None else None
        self._current = current
        self._members_by_team = members_by_team
        self._names = names or {}
        self._current_owner = current_owner
        self._with_attachments = with_attachments
        self._extra = extra
        self._comment_prompt = comment_prompt
        self._words = words or DialogWords()
        self.failure: BaseException | None = None
        """What broke the last save, when it was not a refusal (``DeskError``)."""
        self._focus_comment = focus_comment

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, markup=False)
            if self._choices is not None:
                values = {value for _label, value in self._choices}
                start = self._current if self._current in values else Select.NULL
                yield Select(self._choices, value=start, allow_blank=start is Select.NULL,
                             id="value")  # fmt: skip
            if self._members_by_team is not None:
                yield Label(_("Owner (members of the team)"), classes="hint")
                yield Select[str]([], prompt=_(NOBODY), id="owner")
            if self._extra is not None:
                placeholder, value = self._extra
                yield Input(value=value, placeholder=placeholder, id="extra")
            yield Input(placeholder=_(self._comment_prompt), id="comment")
            if self._with_attachments:
                yield Input(
                    placeholder=_("Attachment paths, comma-separated (up to 5, 500 KB each)"),
                    id="attachments",
                )
            yield Label("", id="dialog-error", markup=False)
            yield Label(_(self._words.hint), classes="hint", markup=False)

    def on_mount(self) -> None:
        if self._members_by_team is not None and self._choices is not None:
            self._offer_owners(self._current or "", keep=self._current_owner)
        first = "#value" if self._choices is not None and not self._focus_comment else "#comment"
        self.query_one(first).focus()

    @on(Select.Changed, "#value")
    def _team_changed(self, event: Select.Changed) -> None:
        if self._members_by_team is not None:
            team = "" if event.value is Select.NULL else str(event.value)
            self._offer_owners(team, keep=self._current_owner)

    def _offer_owners(self, team: str, *, keep: str) -> None:
        """The team's members as owner choices: ``keep`` if a member, else the only one."""
        members = list((self._members_by_team or {}).get(team, []))
        owner = self.query_one("#owner", Select)
        owner.set_options(owner_choices(members, self._names))
        if keep in members:
            owner.value = keep
        elif len(members) == 1:
            owner.value = members[0]

    def request(self) -> ChangeRequest:
        """What is typed and chosen now."""
        value: str | None = None
        if self._choices is not None:
            select = self.query_one("#value", Select)
            value = None if select.is_blank() else str(select.value)
        owner: str | None = None
        if self._members_by_team is not None:
            chosen = self.query_one("#owner", Select)
            owner = "" if chosen.is_blank() else str(chosen.value)
        paths: list[str] = []
        if self._with_attachments:
            text = self.query_one("#attachments", Input).value
            paths = [part.strip() for part in text.split(",") if part.strip()]
        comment = self.query_one("#comment", Input).value
        extra = self.query_one("#extra", Input).value if self._extra is not None else ""
        return ChangeRequest(value=value, comment=comment, attachment_paths=paths, owner=owner,
                             extra=extra)  # fmt: skip

    @on(Input.Submitted)
    def _submit(self) -> None:
        self.query_one("#dialog-error", Label).update(_(self._words.pending))
        self.save(self.request())

    def save(self, request: ChangeRequest) -> None:
        self.in_thread(lambda: self._save(request), lambda _saved: self.dismiss(request),
                       group="save", failed=self._refused)  # fmt: skip

    def _refused(self, failure: Failure) -> None:
        """A refused save, or one that broke (a bug, kept in ``failure``): said in the
        dialog, with everything typed kept, not left at "Saving…"."""
        if not isinstance(failure.error, DeskError):
            self.failure = failure.error
        refused = _("{refused}: {reason}").format(
            refused=_(self._words.refused), reason=failure.line
        )
        self.query_one("#dialog-error", Label).update(printable(refused, lines=False))

    def action_cancel(self) -> None:
        self.dismiss(None)
