"""The ticket screen's macro key: a filterable picker of the macros for the ticket's team and the
shared ones, each with what it does; Enter applies the highlighted one (``engine.macros``).

``MacroPicker`` is the modal: type to filter (by name or by what it does), Up/Down move, Enter
applies, Escape cancels; it returns the chosen macro's name. ``TicketMacroKey`` is what the key
does on ``TicketScreen``: reads the macros in a worker, opens the picker, applies the choice in
a worker through ``unit_of_work`` (its workflows run) over the version of the ticket the screen
showed when the key was pressed (``store.ticket_versions``: a macro that sets fields on a
ticket someone changed since is refused, naming who changed what), then says in one line what
happened or why it was refused, and reloads the ticket (so the key, pressed again, applies
over what it now shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from sqlmodel import Session
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.macros import apply_macro, describe, list_macros, team_names
from cxdesk.i18n import N_, _, translated_bindings
from cxdesk.screens.background import Failure
from cxdesk.screens.base import DeskScreen
from cxdesk.store.models import Role
from cxdesk.store.ticket_versions import StaleVersion
from cxdesk.store.tickets import get_ticket
from cxdesk.text import printable


@dataclass(frozen=True)
class MacroChoice:
    """One macro as the picker lists it."""

    name: str
    team: str | None
    does: str


class MacroPicker(ModalScreen[str | None]):
    """Pick a macro: type to filter, arrows to move, Enter applies, Escape cancels."""

    DEFAULT_CSS = """
    MacroPicker { align: center middle; }
    MacroPicker #macro-picker {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    MacroPicker OptionList {
        height: auto; max-height: 16; border: none; text-wrap: nowrap; text-overflow: ellipsis;
    }
    MacroPicker .hint { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", N_("Cancel")),
        Binding("down", "move(1)", N_("Next"), show=False),
        Binding("up", "move(-1)", N_("Previous"), show=False),
    ]

    def __init__(self, title: str, choices: Sequence[MacroChoice]) -> None:
        super().__init__()
        translated_bindings(self)
        self._title = title
        self._choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="macro-picker"):
            yield Label(self._title, markup=False)
            yield Input(placeholder=_("Type to filter"), id="macro-filter")
            yield OptionList(id="macro-options")
            yield Label(_("Enter applies · Up/Down move · Escape cancels"), classes="hint")

    def on_mount(self) -> None:
        self._show("")
        self.query_one("#macro-filter", Input).focus()

    def _show(self, typed: str) -> None:
        words = typed.lower().split()
        options = self.query_one("#macro-options", OptionList)
        options.clear_options()
        for choice in self._choices:
            seen = f"{choice.name} {choice.does}".lower()
            if all(word in seen for word in words):
                options.add_option(Option(_prompt(choice), id=choice.name))
        options.highlighted = 0 if options.option_count else None

    @on(Input.Changed, "#macro-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._show(event.value)

    def action_move(self, step: int) -> None:
        options = self.query_one("#macro-options", OptionList)
        if options.option_count:
            current = options.highlighted if options.highlighted is not None else -step
            options.highlighted = (current + step) % options.option_count

    @on(Input.Submitted, "#macro-filter")
    def _apply_highlighted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one("#macro-options", OptionList)
        if options.highlighted is None:
            self.notify(_("No macro matches: change the filter"), severity="warning")
            return
        self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#macro-options")
    def _apply_clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _prompt(choice: MacroChoice) -> Text:
    """The macro's name (and team), then what it does, dimmed: as plain text, never markup."""
    prompt = Text(printable(choice.name, lines=False), style="bold")
    team = printable(choice.team, lines=False) if choice.team else _("shared")
    prompt.append(f"  ({team})")
    prompt.append("\n  " + printable(choice.does, lines=False), style="dim")
    return prompt


class TicketMacroKey(DeskScreen):
    """What the macro key of ``TicketScreen`` does (see the module)."""

    key: str

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The key by name in the command palette (an 80-column Footer cannot show it)."""
        if self.macro_applies():
            yield SystemCommand(_("Apply a macro"), _("Canned actions for this ticket's team (M)"),
                                self.action_macro)  # fmt: skip
        yield from getattr(super(), "palette_commands", tuple)()

    def macro_applies(self) -> bool:
        """Whether the Footer offers the key: to experts and admins (the store decides)."""
        user = self.desk.user
        return user is not None and user.role in (Role.admin, Role.expert)

    def shown_version(self) -> int | None:
        """The version of the ticket the screen shows; None while it is still loading."""
        raise NotImplementedError

    def action_macro(self) -> None:
        version = self.shown_version()
        if version is None:
            self.notify(_("The ticket is still loading"), severity="warning")
            return
        self.read_then(self._read_choices, lambda choices: self._pick(choices, version))

    def _read_choices(self, session: Session) -> list[MacroChoice]:
        ticket = get_ticket(session, self.key)
        teams = team_names(session)
        return [
            MacroChoice(m.name, teams.get(m.team_id), describe(m, labelled=True))
            for m in list_macros(session, team_id=ticket.team_id)
        ]

    def _pick(self, choices: list[MacroChoice], version: int) -> None:
        if not choices:
            none = _("No macros for the team of {key}").format(key=self.key)
            self.notify(none, severity="warning", markup=False)
            return

        def chosen(name: str | None) -> None:
            if name is not None:
                self.store_macro(name, version)

        title = _("Apply a macro to {key}").format(key=self.key)
        self.app.push_screen(MacroPicker(title, choices), chosen)

    def store_macro(self, name: str, version: int) -> None:
        def store() -> str:
            with unit_of_work(self.engine) as session:
                done = apply_macro(
                    session, actor=self.user, key=self.key, name=name, if_version=version
                )
            return printable(done.summary(), lines=False)

        def stored(said: str) -> None:
            self.notify(said, markup=False)
            self.reload()

        def refused(failure: Failure) -> None:
            self.show_failure(failure)
            if isinstance(failure.error, StaleVersion):  # show the change: a second try applies
                self.reload()

        self.in_thread(store, stored, group="ticket-macro", failed=refused)
