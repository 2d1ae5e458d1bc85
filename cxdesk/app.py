"""The desk in the terminal: the App, who is logged in, and which screen each name opens.

Built by ``create_app`` (the CLI's ``cxdesk run`` and the tests both use it). Screens live in
``cxdesk/screens``, one per file; every database call runs in a thread worker there.

Two background threads run while the app is open, both stopped when it exits:
- the change watcher reads a cheap change token (``store/changes.py``) every ``poll_seconds``
  and tells the screen on top to reload when another terminal (or this one) changed the desk;
- the delivery worker (``engine/worker.py``, as ``cxdesk worker`` runs it headless) dispatches
  events and sends due email and SMS. A failing pass is logged and shown to an admin; it never
  takes the desk down. ``deliver = false`` in config.toml or ``CXDESK_DELIVER=0`` turns it off
  (for a terminal whose desk has a ``cxdesk worker`` elsewhere).

The database may go away (a PostgreSQL restart, a SQLite lock held past the busy timeout):
the watcher, the screens' reads and delivery each say so (``note_reachable``), every screen
shows one line (``DESK_UNREACHABLE``) while any of them cannot use it, and once the watcher
reads again the screen on top reads again; nothing needs a restart.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING

from textual import events
from textual.app import SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from cxdesk.config import Settings, load_settings
from cxdesk.desk_opening import IMPORTS, DeskOpening
from cxdesk.errors import DeskError
from cxdesk.explaining import ExplainingApp
from cxdesk.i18n import N_, _, ngettext, translated_bindings
from cxdesk.keys_in_order import KeysInOrder
from cxdesk.presence_keeper import PresenceKeeping
from cxdesk.screens.background import Background, cancel_event
from cxdesk.screens.base import DeskChanged, DeskScreen
from cxdesk.screens.login import LoginScreen
from cxdesk.text import printable
from cxdesk.themes import load_themes
from cxdesk.tui_language import Speaking, speak_configured
from cxdesk.widgets.translated_palette import TranslatedPalette

# SQLAlchemy, the store, the engine and the other screens load on first use, not at import:
# ``cxdesk run`` paints the login screen first and opens the desk behind it (cxdesk/launch.py).
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cxdesk.engine.worker import PassFailure, WorkerReport
    from cxdesk.store.changes import ChangeToken
    from cxdesk.store.lean import LoginRow
    from cxdesk.store.models import User

logger = logging.getLogger(__name__)

# Every screen the palette offers, with its help line; those not built yet say so. The names
# are the screens' codes (``navigate``), shown translated (``_(name)``).
SCREENS = {
    N_("Queues"): N_("Queues with waiting counts; pull the next ticket"),
    N_("Tickets"): N_("Every ticket, filtered and sorted"),
    N_("Kanban"): N_("One column per status"),
    N_("Stream"): N_("Every ticket event, live"),
    N_("History"): N_("Tickets I submitted or own"),
    N_("Board"): N_("The waiting area's public dashboard"),
    N_("Insights"): N_("CSAT, NPS, wait and resolve times per team (admin)"),
    N_("Campaigns"): N_("Proactive tickets for a slice of the contact directory (admin)"),
    N_("Check-in"): N_("Check a customer in"),
    N_("New ticket"): N_("Open a ticket by hand"),
    N_("Log out"): N_("Back to the login screen"),
}
NOT_BUILT: frozenset[str] = frozenset()
# Screens that show or change tickets: a volunteer checks customers in, and sees the queues
# and the board read-only.
TICKET_SCREENS = frozenset({"Tickets", "Kanban", "Stream", "History", "New ticket"})
# Screens for the desk's admins only.
ADMIN_SCREENS = frozenset({"Insights", "Campaigns"})
ADMIN_REFUSAL = N_("Only an admin can open {name}")
VOLUNTEER_REFUSAL = N_(
    "A volunteer can check customers in and see the queues, but cannot open ticket screens"
)
# Where each screen lives, imported when first opened: logging in imports its home screen
# alone, on the event loop between Enter and the queues drawn (``desk_ready``).
SCREEN_CLASSES = {
    "Queues": ("cxdesk.screens.queues", "QueuesScreen"),
    "Tickets": ("cxdesk.screens.tickets", "TicketsScreen"),
    "Kanban": ("cxdesk.screens.kanban", "KanbanScreen"),
    "Stream": ("cxdesk.screens.stream", "StreamScreen"),
    "History": ("cxdesk.screens.history", "HistoryScreen"),
    "Board": ("cxdesk.screens.board", "BoardScreen"),
    "Insights": ("cxdesk.screens.insights", "InsightsScreen"),
    "Campaigns": ("cxdesk.screens.campaigns", "CampaignsScreen"),
    "Check-in": ("cxdesk.screens.checkin", "CheckinScreen"),
    "New ticket": ("cxdesk.screens.new_ticket", "NewTicketScreen"),
}
LOG_IN_FIRST = N_("Log in first")
ADMIN, VOLUNTEER = "admin", "volunteer"  # store.models.Role's values (a StrEnum)
DELIVER_ENV = "CXDESK_DELIVER"
READS, DELIVERY = "reads", "delivery"
"""What may find the database unreachable: the change watcher and the screens' reads, and the
delivery worker (whose writes alone fail while another program holds a SQLite lock)."""


def screen_class(name: str) -> type[Screen]:
    """The screen a palette name opens (``SCREEN_CLASSES``), imported on first use: not
    while the store's thread imports SQLAlchemy (``desk_opening.IMPORTS``)."""
    module, cls = SCREEN_CLASSES[name]
    if module not in sys.modules:
        with IMPORTS:
            import_module(module)
    found: type[Screen] = getattr(sys.modules[module], cls)
    return found


def utc_now() -> datetime:
    return datetime.now(UTC)


def delivery_enabled(settings: Settings) -> bool:
    """``CXDESK_DELIVER`` (0/1, false/true, off/on), else config ``deliver``; on by default."""
    value: object = os.environ.get(DELIVER_ENV) or settings.extra.get("deliver", True)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise DeskError(_("Setting deliver must be true or false, not {value!r}").format(value=value))


class DeskReachability(Message):
    """Whether ``source`` (``READS`` or ``DELIVERY``) could use the desk database just now."""

    def __init__(self, source: str, reachable: bool) -> None:
        super().__init__()
        self.source = source
        self.reachable = reachable


class CxDeskApp(
    Background,
    DeskOpening,
    PresenceKeeping,
    Speaking,
    ExplainingApp,
    TranslatedPalette,
    KeysInOrder,
):
    """The desk: log in, then the role's home (volunteer: check-in; expert, admin: queues)."""

    TITLE = "cxdesk"
    BINDINGS = [
        Binding("ctrl+n", "new_ticket", N_("New ticket")),
        Binding("p", "cycle_presence", N_("Presence"), show=False),  # presence_keeper.py
    ]

    def __init__(
        self,
        engine: Engine | Callable[[], Engine],
        user: str | None = None,
        *,
        poll_seconds: float = 1.0,
        settings: Settings | None = None,
        deliver: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ):
        speak_configured(settings)  # the config's language, before any text is made
        super().__init__()
        translated_bindings(self)
        self.init_opening(engine)  # a function: opened behind the first screen (desk_opening)
        self._background_started = False
        self.preset_username = user
        self.poll_seconds = poll_seconds
        """How often the app looks for other terminals' changes (and idle delivery waits)."""
        self.settings = settings or Settings()
        self.deliver = deliver
        """Whether this app runs the delivery worker."""
        self.clock = clock
        """The time screens show waits and ages against (fixed in snapshot tests)."""
        self.user: User | LoginRow | None = None
        """Who is logged in; None on the login screen. Logged in before the store has loaded,
        the lean reader's row until it has (``desk_opening``)."""
        self.delivery_problem = ""
        """The last delivery trouble reported (empty while delivery goes well)."""
        self.unreachable_from: set[str] = set()
        """What found the desk database unreachable on its last try (changed on the UI
        thread only, by ``note_reachable``)."""
        self.desk_themes: list[str] = []
        """The names of the themes loaded from theme files (offered in the palette)."""

    def on_mount(self) -> None:
        self.use_themes()
        self.remember_theme_choices()
        # The login screen paints first; once it has (its first refresh), it calls
        # ``start_background``: the heavy loading (SQLAlchemy, the store, the delivery engine)
        # runs in threads then, so it never holds up the first paint.
        self.push_screen(LoginScreen(self.preset_username))

    async def on_event(self, event: events.Event) -> None:
        # A paste is the one way control characters get into a field (keys never type them):
        # its escapes arrive as visible text, so fields never hold or draw them raw.
        if isinstance(event, events.Paste) and not event.is_forwarded:
            shown = printable(event.text)
            if shown != event.text:
                event = events.Paste(shown)
        await super().on_event(event)

    def start_background(self) -> None:
        """Start the change watcher, open the desk (if given a function) and start delivery;
        once per app (the login screen calls it after each first paint)."""
        if self._background_started:
            return
        self._background_started = True
        self.watch_changes()
        if not self.store_loaded:
            self.open_lean()  # the store loads later: delivery starts once it has
        elif self.deliver:
            self.deliver_messages()

    def store_opened(self) -> None:
        """The store has loaded (``desk_opening``): delivery starts, and the screen on top reads
        again what only the store reads (the queues' estimates, who is available, the SLA)."""
        if self.deliver:
            self.deliver_messages()
        if self.user is not None:
            self.on_desk_changed(DeskChanged())

    def use_themes(self) -> None:
        """Register the theme files' themes (a broken file is reported, then skipped) and
        apply ``theme`` from the config if it names one."""
        loaded = load_themes()
        for problem in loaded.problems:
            logger.warning("%s", problem)
            self.notify(problem, title=_("Themes"), severity="warning", markup=False)
        for theme in loaded.themes:
            self.register_theme(theme)
        self.desk_themes = loaded.names
        wanted = self.settings.extra.get("theme")
        if wanted and str(wanted) in self.available_themes:
            self.theme = str(wanted)
        elif wanted:
            self.notify(_("No theme named {name}").format(name=repr(wanted)),
                        title=_("Themes"), severity="warning", markup=False)  # fmt: skip

    # -- background threads ------------------------------------------------------------------

    def watch_changes(self) -> None:
        self.in_thread(self._watch_changes, group="changes")

    def _watch_changes(self) -> None:
        """Tell the screen on top to reload whenever the desk's change token moves; note
        whether the database could be read (it never gives up, until cancelled: the app
        exits)."""
        stop = cancel_event()
        last: ChangeToken | None = None
        while not stop.wait(self.poll_seconds):
            if (self.user is None or not self.store_loaded) and READS not in self.unreachable_from:
                continue  # the store loads once the queues are drawn: no sooner for this
            from cxdesk.store.changes import change_token  # loaded by the login already
            from cxdesk.store.db import is_unreachable, read_session

            try:
                with read_session(self.engine) as session:
                    token = change_token(session, last.next_since if last else 0)
            except Exception as error:  # the database is away: say so once, look again
                if is_unreachable(error):
                    if READS not in self.unreachable_from:
                        logger.warning("change watch: %s", error)
                        self.note_reachable(READS, False)
                else:
                    logger.exception("change watch failed")
                continue
            if READS in self.unreachable_from:
                self.note_reachable(READS, True)
            if token.differs_from(last):
                self.post_message(DeskChanged())
            last = token

    @property
    def desk_unreachable(self) -> bool:
        """Whether anything found the desk database unreachable on its last try."""
        return bool(self.unreachable_from)

    def note_reachable(self, source: str, reachable: bool) -> None:
        """Note whether ``source`` could use the desk database just now (thread-safe)."""
        self.post_message(DeskReachability(source, reachable))

    def on_desk_reachability(self, message: DeskReachability) -> None:
        was_unreachable = self.desk_unreachable
        if message.reachable:
            if message.source not in self.unreachable_from:
                return
            self.unreachable_from.discard(message.source)
            if message.source == READS:  # what the screen on top shows may be stale
                self.on_desk_changed(DeskChanged())
                self.arrive_again()  # a lean login whose arrival found the desk away
        else:
            self.unreachable_from.add(message.source)
        if self.desk_unreachable != was_unreachable:
            for screen in self.screen_stack:
                if isinstance(screen, DeskScreen):
                    screen.show_unreachable(self.desk_unreachable)

    def on_desk_changed(self, message: DeskChanged) -> None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DeskScreen):
                screen.post_message(DeskChanged())
                return

    def deliver_messages(self) -> None:
        self.in_thread(self._deliver_messages, group="delivery")

    def _deliver_messages(self) -> None:
        """The delivery worker's loop, until the app exits (cancelled); no failure escapes
        it. It starts one poll interval after the desk opened: its imports and first pass
        (SMTP, Twilio, the backlog) would otherwise share the interpreter with a login typed at
        once and the home screen's first read (``desk_ready``)."""
        stop = cancel_event()
        if stop.wait(self.poll_seconds):
            return
        from cxdesk.engine.worker import DeliveryWorker

        try:
            delivery = DeliveryWorker(self.engine, self.settings, configured_only=True)
        except DeskError as error:
            self._delivery_trouble(_("Delivery is off: {error}").format(error=error))
            return
        if delivery.channels_note():  # left for a `cxdesk worker` that has the settings
            self._delivery_trouble(_("Delivery here: {note}").format(note=delivery.channels_note()))
        delivery.run_forever(
            stop,
            poll_seconds=self.poll_seconds,
            on_trouble=self._delivery_failing,
            on_recovery=self._delivery_recovered,
            after_pass=self._delivery_passed,
        )

    def _delivery_failing(self, failure: PassFailure) -> None:
        """Passes started failing: the database away (every screen's one line), or else a
        bug (logged with its traceback, shown to an admin)."""
        from cxdesk.engine.worker import log_trouble

        log_trouble(failure)
        self.note_reachable(DELIVERY, not failure.unreachable)
        if not failure.unreachable:
            self._delivery_trouble(_("Delivery failed: {error}").format(error=failure.error))

    def _delivery_recovered(self, failure: PassFailure) -> None:
        from cxdesk.engine.worker import log_recovery

        log_recovery(failure)
        self.note_reachable(DELIVERY, True)
        self.delivery_problem = ""  # the next trouble is shown again

    def _delivery_passed(self, report: WorkerReport) -> None:
        failed = report.results["failed"]
        if failed:
            self._delivery_trouble(
                ngettext(
                    "Delivery: {n} message failed; see `cxdesk outbox list`",
                    "Delivery: {n} messages failed; see `cxdesk outbox list`",
                    failed,
                ).format(n=failed)
            )

    def _delivery_trouble(self, text: str) -> None:
        """Log it; show it to an admin once (thread-safe)."""
        logger.warning("%s", text)
        if text == self.delivery_problem:
            return
        self.delivery_problem = text
        if self.user is not None and self.user.role == ADMIN:
            self.notify(text, title=_("Delivery"), severity="warning", markup=False)

    # -- who is logged in --------------------------------------------------------------------

    def log_in(self, user: User | LoginRow) -> None:
        self.set_user(user)
        self.speak_on_login()
        self.present_on_login(user)
        self.refresh_bindings()
        if user.role == ADMIN and self.delivery_problem:  # reported before anyone logged in
            self.notify(
                self.delivery_problem, title=_("Delivery"), severity="warning", markup=False
            )
        home = "Check-in" if user.role == VOLUNTEER else "Queues"
        if home != "Queues":
            self.load_store()  # the queues load it once drawn (their first fill is lean)
        self.navigate(home)

    def log_out(self) -> None:
        self.absent_on_logout(self.user)
        self.user = None
        self.speak_on_logout()
        self.refresh_bindings()
        self._show(LoginScreen(None))

    # -- navigation --------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for name, help_text in SCREENS.items():
            if self.refusal(name) is not None:  # not offered to whom it would refuse
                continue
            yield SystemCommand(_(name), _(help_text), partial(self.navigate, name))
        for theme in self.desk_themes:
            yield SystemCommand(_("Theme: {name}").format(name=theme), _("Use this colour theme"),
                                partial(setattr, self, "theme", theme))  # fmt: skip
        yield from self.language_commands()
        yield from self.presence_commands()
        screen_commands = getattr(screen, "palette_commands", None)
        if screen_commands is not None:  # what the screen on top offers by name (its keys)
            yield from screen_commands()
        yield from super().get_system_commands(screen)  # Textual's, translated

    def refusal(self, name: str) -> str | None:
        """Why the logged-in user may not open this screen, or None when they may."""
        if self.user is None:
            return _(LOG_IN_FIRST)
        if self.user.role == VOLUNTEER and name in TICKET_SCREENS:
            return _(VOLUNTEER_REFUSAL)
        if self.user.role != ADMIN and name in ADMIN_SCREENS:
            return _(ADMIN_REFUSAL).format(name=_(name))
        if name in NOT_BUILT:
            return _("{name}: not built yet").format(name=_(name))
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
            self.push_screen(screen_class(name)())
        else:
            self._show(screen_class(name)())

    def open_ticket(self, key: str, *, pulled_at: datetime | None = None) -> None:
        """Open a ticket's screen; ``pulled_at``: the viewer just pulled it (``u`` undoes)."""
        reason = _(LOG_IN_FIRST) if self.user is None else None
        if self.user is not None and self.user.role == VOLUNTEER:
            reason = _(VOLUNTEER_REFUSAL)
        if reason:
            self.notify(reason, severity="warning", markup=False)
            return
        from cxdesk.screens.ticket import TicketScreen

        self.push_screen(TicketScreen(key, pulled_at=pulled_at))

    def _show(self, screen: Screen) -> None:
        """Make ``screen`` the one top-level screen (above the default), closing the others.

        Not awaited: the stack changes at once, and a screen's own handler may call this
        (awaiting its own removal there would never finish).
        """
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(screen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle_presence":
            return bool(self.presence)  # an expert or admin logged in
        # not on the login screen, nor for a volunteer
        return not (action == "new_ticket" and self.refusal("New ticket") is not None)

    async def action_quit(self) -> None:
        if self.asks_before_quitting():  # a half-typed form: "Leave without saving?" first
            return
        await self.absent_on_quit()
        self.exit()

    def action_new_ticket(self) -> None:
        self.navigate("New ticket")


def create_app(
    engine: Engine | Callable[[], Engine],
    *,
    user: str | None = None,
    poll_seconds: float = 1.0,
    settings: Settings | None = None,
    deliver: bool | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> CxDeskApp:
    """The app on a desk's engine (or a function opening it, called behind the first
    screen); ``user`` preselects the login name.

    ``settings`` default to ``load_settings()``; ``deliver`` None follows them
    (``delivery_enabled``).
    """
    settings = settings or load_settings()
    if deliver is None:
        deliver = delivery_enabled(settings)
    return CxDeskApp(
        engine, user, poll_seconds=poll_seconds, settings=settings, deliver=deliver, clock=clock
    )
