"""How the app opens the desk's database: a lean reader first, the full store behind it.

A mixin of the App (``cxdesk.app``). ``cxdesk run`` gives the app a function opening the
store's engine (SQLAlchemy, the models, the schema check: about a second of imports). Once the
login screen is painted (``start_background``), the desk is opened through its driver alone
(``store.lean.open_lean``, tens of milliseconds): the login and the experts' queues screen read
their first rows through it, and the full store loads in a thread once the queues are drawn
(``load_store``), or at once when anything asks for the engine earlier (``engine``: an action
pressed, a volunteer's home screen), or when the lean reader cannot open this desk (then the
store says what is wrong, as it always did).

Logging in through the lean reader leaves for the store what writes: when it has loaded, the
user the login read (``store.lean.LoginRow``) is replaced by the store's ``User``, and they
arrive (available, ``presence_keeper.arrive``: presence written, auto queues served) before
any worker waiting for the engine goes on, so the effects come in the order they always did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from textual.message import Message

from cxdesk.errors import DeskError
from cxdesk.i18n import _

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cxdesk.config import Settings
    from cxdesk.store.lean import FirstFill, LeanDesk, LoginRow
    from cxdesk.store.models import User

logger = logging.getLogger(__name__)
VOLUNTEER = "volunteer"  # store.models.Role's value
PRELOADED = ("cxdesk.store.logins", "cxdesk.store.user_language", "cxdesk.screens.queues")
"""What the login and an expert's home screen need from the store, imported in the thread
that opens it (not on the event loop)."""


IMPORTS = threading.Lock()
"""Held by the thread that loads the store while it imports SQLAlchemy, SQLModel and the
models (``HEAVY``), and by the UI thread while it imports a screen not imported yet
(``app.screen_class``). Two threads importing SQLAlchemy at once can each find a module the
other has half done (its modules import each other in a circle) and fail with "partially
initialized module": a volunteer's login, whose check-in screen imports it on the UI thread
while the store's thread does, failed so one time in two here (no bytecode cached)."""
HEAVY = ("sqlmodel", "cxdesk.store.models", "cxdesk.store.db")
"""What the store's thread imports holding ``IMPORTS``: once they are in, a screen's import
finds SQLAlchemy whole."""
LEAN_HOME = "cxdesk.screens.queues"
"""An expert's home screen, which imports no SQLAlchemy (its first fill is lean)."""


class LoadStore(Message):
    """Something waits for the store (a worker asked for the engine): load it now."""


class StoreOpened(Message):
    """The store has loaded (``load_store``'s thread)."""


class StoreFailed(Message):
    """The store could not be opened (``load_store``'s thread): the app ends with its line."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class DeskOpening:
    """The App's database: ``lean`` while the store loads, ``engine`` once it has."""

    settings: Settings  # the App's
    user: User | LoginRow | None  # the App's
    deliver: bool  # the App's

    def init_opening(self, engine: Engine | Callable[[], Engine]) -> None:
        """In the App's ``__init__``: an engine given is the store, loaded; a function is
        called behind the first screen."""
        self._engine: Engine | None = None
        self._engine_error: DeskError | None = None
        self._store_ready = threading.Event()
        """Set once the store is open and a lean login's user has arrived (or it failed)."""
        self._open_engine: Callable[[], Engine] | None = None
        self._store_started = False
        self._lean: LeanDesk | None = None
        self._lean_tried = threading.Event()
        self._arrival = threading.Lock()
        """Held while the user is set at login and while the store checks for one to let
        arrive: a lean login arrives once, whichever of the two comes first."""
        self._arrived: LoginRow | None = None
        self._home_fill: tuple[LoginRow, FirstFill] | None = None
        """The queues' first fill, read by a lean login's worker for the user it logs in."""
        if callable(engine) and not hasattr(engine, "dialect"):
            self._open_engine = engine
        else:
            self._engine = engine  # type: ignore[assignment]
            self._store_started = True
            self._store_ready.set()
            self._lean_tried.set()

    @property
    def engine(self) -> Engine:
        """The store's engine; a caller asking for it while it is still loading waits (and has
        it loaded now: in a thread of its own, which needs neither the event loop nor a
        worker, so the UI thread may wait too). Raises the opening's DeskError if the desk
        could not open."""
        if not self._store_ready.is_set() and not self._store_started:
            app: Any = self
            if threading.get_ident() == getattr(app, "_thread_id", None):
                self.load_store()
            else:
                app.post_message(LoadStore())
        self._store_ready.wait()
        if self._engine is None:
            raise self._engine_error or DeskError("The desk database is not open")
        return self._engine

    @property
    def store_loaded(self) -> bool:
        """Whether ``engine`` answers without waiting."""
        return self._store_ready.is_set()

    def lean_desk(self) -> LeanDesk | None:
        """The lean reader while the store is not loaded (waits for its opening, in a worker
        thread); None once the store is loaded, or when this desk cannot be read lean."""
        self._lean_tried.wait()
        return None if self._store_ready.is_set() else self._lean

    def open_lean(self) -> None:
        """Behind the login screen: open the lean reader; without one, load the store now."""
        app: Any = self

        def opened(lean: LeanDesk | None) -> None:
            if lean is None:
                self.load_store()

        app.in_thread(self._open_lean, opened, group="open-lean")

    def _open_lean(self) -> LeanDesk | None:
        from cxdesk.store.lean import open_lean

        try:
            self._lean = open_lean(self.settings.resolved_database_url)
        finally:
            self._lean_tried.set()
        if self._lean is not None:
            import_module(LEAN_HOME)  # while the user types, not on the event loop after Enter
        return self._lean

    def on_load_store(self, _message: LoadStore) -> None:
        self.load_store()

    def load_store(self) -> None:
        """Open the store behind what is on screen (once, on the UI thread), in a thread of its
        own (``threading``: it starts at once, where a Textual worker starts only once the
        event loop runs again, which ``engine`` asked on the UI thread would wait for
        forever). A failure ends the app with its one line (as the CLI would print it)."""
        if self._store_started:
            return
        self._store_started = True
        threading.Thread(target=self._load_store, name="cxdesk-open-store", daemon=True).start()

    def _load_store(self) -> None:
        app: Any = self
        try:
            with IMPORTS:
                for module in HEAVY:
                    import_module(module)
            self._open_store()
        except Exception as error:
            with self._arrival:
                self._store_ready.set()  # whoever waits for the engine gets the error
            app.post_message(StoreFailed(error))
        else:
            app.post_message(StoreOpened())

    def on_store_opened(self, _message: StoreOpened) -> None:
        app: Any = self
        app.store_opened()

    def on_store_failed(self, message: StoreFailed) -> None:
        from cxdesk.screens.background import failure_of

        app: Any = self
        line = failure_of(message.error, reading=False).line
        app.exit(return_code=1, message=_("Error: {message}").format(message=line))

    def _open_store(self) -> None:
        assert self._open_engine is not None
        try:
            try:
                self._engine = self._open_engine()
            except DeskError:
                raise
            except Exception as error:
                self._engine = self._unchecked_engine(error)
        except DeskError as error:
            self._engine_error = error
            raise
        except Exception as error:  # the database is unreachable or not a database
            reason = getattr(error, "orig", None) or error
            first = (str(reason).strip().splitlines() or [type(error).__name__])[0]
            self._engine_error = DeskError(
                _("Cannot use the desk database: {reason}").format(reason=first)
            )
            raise DeskError(first) from error
        from cxdesk.store.lean import LoginRow

        for module in PRELOADED:
            import_module(module)
        tried: LoginRow | None = None
        while True:  # whoever logged in lean arrives before the engine is handed out
            with self._arrival:  # found nobody new, and marked ready, in one hold: a login
                row = self.user  # after it sees the store loaded (``set_user``)
                if not isinstance(row, LoginRow) or row is self._arrived or row is tried:
                    self._store_ready.set()
                    return
            tried = row
            self._arrive_from_lean(self._engine)

    def _unchecked_engine(self, error: Exception) -> Engine:
        """The store's engine when opening it found the database away (``error``) after the
        lean reader had opened it, at the schema this code knows: the store's own reads then
        say the database is away, as they do whenever it goes away (every screen's one line,
        the change watcher seeing it back), rather than the app ending. Else ``error``."""
        from cxdesk.store.db import is_unreachable, make_engine

        if self._lean is None or not is_unreachable(error):
            raise error
        logger.warning("opening the store: %s", error)
        return make_engine(self.settings.resolved_database_url)

    def set_user(self, user: User | LoginRow | None) -> None:
        """Who is logged in (on the UI thread); a lean login's row once the store has loaded
        arrives in a worker (else the store's loading lets it arrive)."""
        from cxdesk.store.lean import LoginRow  # no SQLAlchemy

        with self._arrival:
            self.user = user
            loaded = self._store_ready.is_set()
        if loaded and isinstance(user, LoginRow):
            self.arrive_again()

    def read_home_lean(self, lean: LeanDesk, row: LoginRow) -> None:
        """In a lean login's worker: an expert's queues' first fill, read there rather than by
        the screen's own worker once it is mounted (one thread's start and wait fewer between
        Enter and the queues drawn); the screen shows it (``take_home_fill``)."""
        if row.role == VOLUNTEER:
            return
        try:
            self._home_fill = (row, lean.first_fill(row.id, row.role))
        except DeskError as error:  # the driver's (the database away): the screen reads
            logger.warning("reading the queues at login: %s", error)
        except Exception:  # the screen reads for itself
            logger.exception("reading the queues at login failed")

    def take_home_fill(self) -> FirstFill | None:
        """The first fill read at login, once, for the user logged in now (UI thread)."""
        found, self._home_fill = self._home_fill, None
        return found[1] if found is not None and found[0] is self.user else None

    def _arrive_from_lean(self, engine: Engine) -> None:
        """A user logged in through the lean reader: the store's ``User`` in their place, and
        their arrival written (what the store's login does). The database away, they stay the
        lean row until it is back (``arrive_again``)."""
        from cxdesk.store.lean import LoginRow

        with self._arrival:
            row = self.user
            if not isinstance(row, LoginRow) or row is self._arrived:
                return
            self._arrived = row
        try:
            user = self._store_user(engine, row)
        except DeskError as error:  # the database away: the store's reads say so
            logger.warning("the store's user for %s: %s", row.username, error)
            with self._arrival:
                self._arrived = None
            return
        with self._arrival:  # checked and swapped in one hold: a logout is either side
            if self.user is not row:  # logged out meanwhile: no arrival
                return
            self.user = user
        app: Any = self
        if app.presence:  # an expert or admin, not quitting meanwhile (presence_keeper)
            app.arrive(user, engine=engine)

    def arrive_again(self) -> None:
        """The desk reachable again (UI thread): a lean login whose arrival found it away
        arrives now."""
        from cxdesk.store.lean import LoginRow

        engine = self._engine
        if isinstance(self.user, LoginRow) and self._store_ready.is_set() and engine is not None:
            app: Any = self
            app.in_thread(lambda: self._arrive_from_lean(engine), group="arrive")

    def _store_user(self, engine: Engine, row: LoginRow) -> User:
        from cxdesk.store.db import read_session
        from cxdesk.store.directory import get_user

        with read_session(engine) as session:
            user = get_user(session, row.username)
        user.language = row.language  # a language chosen meanwhile (``switch_language``)
        return user
