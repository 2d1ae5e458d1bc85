"""The desk in the terminal: the App, who is logged in, and which screen each name opens.

Built by ``create_app`` (the CLI's ``cxdesk run`` and the tests both use it). Screens live in
``cxdesk/screens``, one per file; every database call runs in a thread worker there.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from sqlalchemy import Engine
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from cxdesk.screens.checkin import CheckinScreen
from cxdesk.screens.login import LoginScreen
from cxdesk.screens.new_ticket import NewTicketScreen
from cxdesk.screens.queues import QueuesScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store.models import Role, User

# Every screen the palette offers, with its help line; those not built yet say so.
SCREENS = {
    "Queues": "Queues with waiting counts; pull the next ticket",
    "Tickets": "Every ticket, filtered and sorted",
    "Kanban": "One column per status",
    "Stream": "Every ticket event, live",
    "History": "Tickets I submitted or own",
    "Board": "The waiting area's public dashboard",
    "Check-in": "Check a customer in",
    "New ticket": "Open a ticket by hand",
    "Log out": "Back to the login screen",
}
NOT_BUILT = frozenset({"Tickets", "Kanban", "Stream", "History", "Board"})
# Screens that show or change tickets: a volunteer only checks customers in.
TICKET_SCREENS = frozenset({"Queues", "Tickets", "Kanban", "Stream", "History", "New ticket"})
VOLUNTEER_REFUSAL = "A volunteer can check customers in, but cannot open ticket screens"


class CxDeskApp(App[None]):
    """The desk: log in, then the role's home (volunteer: check-in; expert, admin: queues)."""

    TITLE = "cxdesk"
    BINDINGS = [Binding("ctrl+n", "new_ticket", "New ticket")]

    def __init__(self, engine: Engine, user: str | None = None, *, poll_seconds: float = 1.0):
        super().__init__()
        self.engine = engine
        self.preset_username = user
        self.poll_seconds = poll_seconds
        """How often screens look for other terminals' changes."""
        self.user: User | None = None
        """Who is logged in; None on the login screen."""

    def on_mount(self) -> None:
        self.push_screen(LoginScreen(self.preset_username))

    # -- who is logged in --------------------------------------------------------------------

    def log_in(self, user: User) -> None:
        self.user = user
        self.sub_title = f"{user.name} ({user.role})"
        self.navigate("Check-in" if user.role == Role.volunteer else "Queues")

    def log_out(self) -> None:
        self.user = None
        self.sub_title = ""
        self._show(LoginScreen(None))

    # -- navigation --------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for name, help_text in SCREENS.items():
            yield SystemCommand(name, help_text, partial(self.navigate, name))
        yield from super().get_system_commands(screen)

    def refusal(self, name: str) -> str | None:
        """Why the logged-in user may not open this screen, or None when they may."""
        if self.user is None:
            return "Log in first"
        if self.user.role == Role.volunteer and name in TICKET_SCREENS:
            return VOLUNTEER_REFUSAL
        if name in NOT_BUILT:
            return f"{name}: not built yet"
        return None

    def navigate(self, name: str) -> None:
        """Open a screen by its palette name, or say why not."""
        if name == "Log out":
            self.log_out()
            return
        reason = self.refusal(name)
        if reason:
            self.notify(reason, severity="warning", markup=False)
            return
        if name == "New ticket":
            self.push_screen(NewTicketScreen())
        elif name == "Check-in":
            self._show(CheckinScreen())
        elif name == "Queues":
            self._show(QueuesScreen())

    def open_ticket(self, key: str) -> None:
        reason = "Log in first" if self.user is None else None
        if self.user is not None and self.user.role == Role.volunteer:
            reason = VOLUNTEER_REFUSAL
        if reason:
            self.notify(reason, severity="warning", markup=False)
            return
        self.push_screen(TicketScreen(key))

    def _show(self, screen: Screen) -> None:
        """Make ``screen`` the one top-level screen (above the default), closing the others.

        Not awaited: the stack changes at once, and a screen's own handler may call this
        (awaiting its own removal there would never finish).
        """
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(screen)

    def action_new_ticket(self) -> None:
        self.navigate("New ticket")


def create_app(engine: Engine, *, user: str | None = None, poll_seconds: float = 1.0) -> CxDeskApp:
    """The app on a desk's engine; ``user`` preselects the login name."""
    return CxDeskApp(engine, user, poll_seconds=poll_seconds)
