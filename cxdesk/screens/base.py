"""What every desk screen shares: the engine, the logged-in user, the clock, reporting errors,
reloading when the desk changed (``DeskChanged``, sent by the app's change watcher), background
jobs (``Background.in_thread``) and the one line shown while the desk database is unreachable
(``show_failure``, ``show_unreachable``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual import events
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer

from cxdesk.errors import DeskError, ValidationFailed
from cxdesk.i18n import _, translated_bindings
from cxdesk.labels import label
from cxdesk.local_time import shown_time as shown_time  # the screens' times (desk zone)
from cxdesk.screens.background import Background, Failure
from cxdesk.text import printable
from cxdesk.widgets.desk_notice import show_desk_notice

if TYPE_CHECKING:  # the login screen draws before SQLAlchemy has loaded (see cxdesk/launch.py)
    from sqlalchemy import Engine
    from sqlmodel import Session

    from cxdesk.app import CxDeskApp
    from cxdesk.store.models import User

Read = TypeVar("Read")
COMPACT_FOOTER_BELOW = 100
"""Terminals narrower than this get the compact Footer (less space around each key), so
more of a screen's keys are in sight (80 columns)."""


class DeskChanged(Message, bubble=False):
    """The desk changed (here or in another terminal): the screen on top reloads its data."""


class DeskScreen(Background, Screen[Any]):
    """A screen of the desk app; its workers use ``self.engine`` and act as ``self.user``.

    A screen that shows desk data overrides ``reload`` (start its loading worker); it is
    called when the desk changed while the screen is on top.

    Who is logged in is the screen's own ``sub_title`` (its Header shows it), never the app's:
    a Header watches the app's titles, and Textual runs that watcher for the Header of a screen
    being replaced after its title widget is gone (``NoMatches`` at login, on a busy machine).
    """

    DEFAULT_CSS = """
    /* The compact Footer's palette key reaches the last cell (else a key under it shows). */
    DeskScreen Footer.-compact FooterKey.-command-palette { margin-right: 0; }
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        translated_bindings(self)
        self.show_user()
        self._resumed = False
        """Whether the screen has been shown once (``on_event``)."""

    def show_user(self) -> None:
        """The sub-title: who is logged in, and their presence (``presence_keeper``)."""
        user = self.desk.user
        shown = f"{user.name} ({label(user.role)}){self.desk.presence_label()}" if user else ""
        self.sub_title = shown

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Mount) and not self.is_attached:
            # Closed before it mounted (the app quit, or another screen replaced it, right
            # after it was opened): its children are gone, so its on_mount has nothing to do.
            return
        if isinstance(event, events.ScreenResume) and not self._resumed:
            # Opened: its widgets were styled as they mounted, just now. Textual styles every
            # one of them again on each resume (for a screen coming back from under another,
            # whose styles may be stale): 10-30 ms of CPU between a login and the queues.
            self._resumed = True
            event.refresh_styles = False
        await super().on_event(event)

    @property
    def desk(self) -> CxDeskApp:
        return cast("CxDeskApp", self.app)

    @property
    def engine(self) -> Engine:
        return self.desk.engine

    @property
    def user(self) -> User:
        """Who acts, for a worker: the store's ``User``. Logged in before the store had loaded
        (``cxdesk.desk_opening``), a worker waits for it. The UI thread reads who is logged in
        through ``desk.user`` instead, typed ``User | LoginRow``: until the store has loaded
        it is the lean login's row, which has only the fields the UI reads (id, username,
        name, role, language; no email, phone or cap), so a User-only field read there fails
        the type check rather than the desk."""
        user = self.desk.user
        if user is not None and not self.desk.store_loaded and not self._on_ui_thread():
            self.desk.engine  # noqa: B018  (waits for the store: the User in the row's place)
            user = self.desk.user
        if user is None:
            raise DeskError(_("Log in first"))
        return cast("User", user)

    def _on_ui_thread(self) -> bool:
        return threading.get_ident() == getattr(self.app, "_thread_id", None)

    def report(self, error: DeskError) -> None:
        """Show a refused action's one-line message (thread-safe)."""
        self.app.notify(printable(str(error)), severity="error", markup=False)

    def show_unreachable(self, unreachable: bool) -> None:
        """Show or remove the one line saying the desk database is unreachable."""
        show_desk_notice(self, unreachable)

    def on_screen_resume(self) -> None:
        self.show_unreachable(self.desk.desk_unreachable)

    def on_resize(self, event: events.Resize) -> None:
        for footer in self.query(Footer):
            footer.compact = event.size.width < COMPACT_FOOTER_BELOW

    def show_failure(self, failure: Failure) -> None:
        """A failed job (``background``): a read that found the database away is not this
        screen's trouble: the app shows its one line, and the screen reads again when the
        desk is back (``reload``). Anything else is one notification."""
        if failure.unreachable and failure.reading:
            self.desk.note_reachable("reads", False)
        else:
            super().show_failure(failure)

    def form_refused(
        self, failure: Failure, show_errors: Callable[[Mapping[str, str]], object]
    ) -> None:
        """A form's save that failed: invalid fields said next to them (``ValidationFailed``,
        by ``show_errors``), any other refusal in one line (the fields' errors cleared)."""
        invalid = isinstance(failure.error, ValidationFailed)
        show_errors(failure.error.errors if isinstance(failure.error, ValidationFailed) else {})
        if not invalid:
            self.show_failure(failure)

    def read_then(self, read: Callable[[Session], Read], show: Callable[[Read], object]) -> None:
        """Run ``read`` on a read session in a thread worker, then ``show`` its result on the
        UI thread (``in_thread``)."""
        from cxdesk.store.db import read_session  # SQLAlchemy loads after the first screen

        def reading() -> Read:
            with read_session(self.engine) as session:
                return read(session)

        self.in_thread(reading, show, group="read", exclusive=False, reading=True)

    def now(self) -> datetime:
        """The app's clock (aware UTC): what waits and ages are measured against."""
        return self.desk.clock()

    def reload(self) -> None:
        """Read what the screen shows again, in a worker; nothing by default."""

    def on_desk_changed(self, message: DeskChanged) -> None:
        self.reload()
