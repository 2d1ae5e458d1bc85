"""Help for the screen on top (``?`` or F1; F1 alone in a text field, where ``?`` is typed).

``HelpScreen`` shows what the screen is for (a short paragraph per screen, ``ABOUT``) and the
keys that work on it right now: the screen's and the app's active bindings (``check_action``
has already hidden what the user may not do), with their translated descriptions. Escape (or
``?``, F1, ``q``) closes it.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from cxdesk.i18n import N_, _, translated_bindings

ABOUT: dict[str, tuple[str, str]] = {
    "LoginScreen": (
        N_("Log in"),
        N_("Log in with your username and password. Tab moves to the next field."),
    ),
    "QueuesScreen": (
        N_("Queues"),
        N_(
            "Each queue with how many tickets wait in it. Pull the next ticket to work on it, "
            "or open a queue's waiting list. Your own open tickets are listed below."
        ),
    ),
    "WaitingListScreen": (
        N_("Waiting list"),
        N_("The tickets waiting in this queue, first in line at the top. Enter opens one."),
    ),
    "CheckinScreen": (
        N_("Check-in"),
        N_(
            "Check a customer in: answer the questions and press Enter. The new ticket's key "
            "is shown above the form, and the form is cleared for the next customer."
        ),
    ),
    "TicketsScreen": (
        N_("Tickets"),
        N_(
            "Every ticket, filtered and sorted. Type a filter in the field above the list; "
            "Enter on a row opens its ticket."
        ),
    ),
    "TicketScreen": (
        N_("Ticket"),
        N_(
            "One ticket: its details, conversation and history. Each key below changes the "
            "ticket; every change asks for a comment."
        ),
    ),
    "KanbanScreen": (
        N_("Kanban"),
        N_(
            "One column per status. Move between columns and cards with the arrow keys; "
            "shift and an arrow moves the card to the next status."
        ),
    ),
    "StreamScreen": (
        N_("Stream"),
        N_("Every ticket event as it happens, newest first. Enter opens the ticket."),
    ),
    "HistoryScreen": (
        N_("History"),
        N_("The tickets you submitted or own. Enter opens one."),
    ),
    "BoardScreen": (
        N_("Board"),
        N_("The waiting area's public dashboard: who is being served and who is waiting."),
    ),
    "InsightsScreen": (
        N_("Insights"),
        N_("Satisfaction, wait and resolve times per team or per expert."),
    ),
    "CampaignsScreen": (
        N_("Campaigns"),
        N_("Open tickets for a slice of the contact directory: preview who gets one, then send."),
    ),
    "NewTicketScreen": (
        N_("New ticket"),
        N_("Open a ticket by hand for a customer. Escape leaves the form."),
    ),
}
"""Each screen's name and what it is for, by the screen's class name."""
EVERYWHERE = N_(
    "Escape goes back. ctrl+p opens the palette: type a screen's name, or a ticket's key to "
    "open it."
)


TEXTUAL_KEYS = frozenset({"app.focus_next", "app.focus_previous", "screen.copy_text"})
"""Keys every Textual screen has (Tab between fields, copying): not this screen's to explain."""


def key_lines(screen: Screen[Any]) -> list[tuple[str, str]]:
    """(keys, what they do) for the bindings of ``screen`` and of the app that work now (what
    ``check_action`` hides is left out), the screen's first; keys described alike are joined
    ("?, f1", "←, →"). A widget's own keys (a list's arrows) are not listed."""
    app = screen.app
    found: dict[str, list[str]] = {}
    taken: set[str] = set()
    for namespace, bindings in screen._modal_binding_chain:
        if namespace is not screen and namespace is not app:
            continue
        for key, binding in bindings:
            if key in taken or not binding.description or binding.system:
                continue
            if binding.action in TEXTUAL_KEYS:
                continue
            if app._check_action_state(binding.action, namespace) is False:
                continue
            taken.add(key)
            found.setdefault(_(binding.description), []).append(app.get_key_display(binding))
    return [(", ".join(keys), what) for what, keys in found.items()]


def show_help(app: App[Any], hint: str = EVERYWHERE) -> None:
    """Help for the screen on top of ``app`` (not over itself, nor over the palette);
    ``hint``: what works everywhere in ``app`` (``N_`` text)."""
    from textual.command import CommandPalette

    if not isinstance(app.screen, (HelpScreen, CommandPalette)):
        app.push_screen(HelpScreen(app.screen, hint))


class HelpScreen(ModalScreen[None]):
    """What the screen below is for and its keys."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help {
        width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen .help-title { text-style: bold; width: 1fr; }
    HelpScreen .help-about { margin-bottom: 1; }
    HelpScreen .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", N_("Close"))]

    def __init__(self, about: Screen[Any], hint: str = EVERYWHERE) -> None:
        super().__init__()
        translated_bindings(self)
        self._about = about
        self._hint = hint
        self._keys = key_lines(about)

    def compose(self) -> ComposeResult:
        title, about = ABOUT.get(type(self._about).__name__, ("", ""))
        with VerticalScroll(id="help"):
            heading = _("Help: {screen}").format(screen=_(title)) if title else _("Help")
            yield Label(heading, classes="help-title", markup=False)
            if about:
                yield Static(_(about), classes="help-about", markup=False)
            yield Static(self._key_table(), id="help-keys")
            yield Static(_(self._hint), classes="hint", markup=False)
            yield Label(_("Escape closes this help"), classes="hint")

    def _key_table(self) -> Text:
        if not self._keys:
            return Text(_("No keys on this screen"))
        width = max(len(key) for key, _what in self._keys) + 2
        text = Text()
        for key, what in self._keys:
            text.append(key.ljust(width), "bold")
            text.append(f"{what}\n")
        text.rstrip()
        return text

    def action_close(self) -> None:
        self.dismiss(None)
