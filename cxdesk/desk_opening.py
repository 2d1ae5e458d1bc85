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
    from cxdesk.screens.background import Failure
    from cxdesk.store.lean import FirstFill, LeanDesk, LoginRow
    from cxdesk.store.models import User

logger = logging.getLogger(__name__)
VOLUNTEER = "volunteer"  # store.models.Role's value
PRELOADED = ("cxdesk.store.logins", "cxdesk.store.user_language", "cxdesk.screens.queues")
"""What the login and an expert's home screen need from the store, imported in the thread
that opens it (not on the event loop)."""


LEAN_HOME = "cxdesk.screens.queues"
"""An expert's home screen, which imports no SQLAlchemy (its first fill is lean)."""


class LoadStore(Message):
    """Something waits for the store (a worker asked for the engine): load it now."""


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
        """The store's engine; a worker thread asking for it while it is still loading waits
        (and has it loaded now). Raises the opening's DeskError if the desk could not open."""
        if not self._store_ready.is_set() and not self._store_started:
            app: Any = self
            if threading.get_ident() == getattr(app, "_thread_id", None):
                self.load_store()  # the UI thread waits (a wait the loading never needs it for)
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
        """Open the store behind what is on screen (once); a failure ends the app with its
        one line (as the CLI would print it)."""
        if self._store_started:
            return
        self._store_started = True
        app: Any = self

        def opened(_nothing: None) -> None:
            app.store_opened()

        def failed(failure: Failure) -> None:
            app.exit(return_code=1, message=_("Error: {message}").format(message=failure.line))

        app.in_thread(self._open_store, opened, group="open", failed=failed)

    def _open_store(self) -> None:
        assert self._open_engine is not None
        try:
            self._engine = self._open_engine()
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
        else:
            for module in PRELOADED:
                import_module(module)
            self._arrive_from_lean(self._engine)
        finally:
            with self._arrival:
                self._store_ready.set()

    def set_user(self, user: User | LoginRow | None) -> None:
        """Who is logged in (on the UI thread); a lean login's row once the store has loaded
        arrives in a worker (else the store's loading lets it arrive)."""
        from cxdesk.store.lean import LoginRow  # no SQLAlchemy

        with self._arrival:
            self.user = user
            loaded = self._store_ready.is_set()
        if loaded and isinstance(user, LoginRow) and self._engine is not None:
            engine = self._engine
            app: Any = self
            app.in_thread(lambda: self._arrive_from_lean(engine), group="arrive")

    def read_home_lean(self, lean: LeanDesk, row: LoginRow) -> None:
        """In a lean login's worker: an expert's queues' first fill, read there rather than by
        the screen's own worker once it is mounted (one thread's start and wait fewer between
        Enter and the queues drawn); the screen shows it (``take_home_fill``)."""
        if row.role == VOLUNTEER:
            return
        try:
            self._home_fill = (row, lean.first_fill(row.id, row.role))
        except Exception:  # the screen reads for itself
            logger.exception("reading the queues at login failed")

    def take_home_fill(self) -> FirstFill | None:
        """The first fill read at login, once, for the user logged in now (UI thread)."""
        found, self._home_fill = self._home_fill, None
        return found[1] if found is not None and found[0] is self.user else None

    def _arrive_from_lean(self, engine: Engine) -> None:
        """A user logged in through the lean reader: the store's ``User`` in their place, and
        their arrival written (what the store's login does), before the engine is handed out."""
        from cxdesk.store.lean import LoginRow

        with self._arrival:
            row = self.user
            if not isinstance(row, LoginRow) or row is self._arrived:
                return
            self._arrived = row
        from cxdesk.store.db import read_session
        from cxdesk.store.directory import get_user

        with read_session(engine) as session:
            user = get_user(session, row.username)
        user.language = row.language  # a language chosen meanwhile (``switch_language``)
        app: Any = self
        if self.user is not row:  # logged out meanwhile: no arrival
            return
        self.user = user
        if app.presence:  # an expert or admin, not quitting meanwhile (presence_keeper)
            app.arrive(user, engine=engine)
