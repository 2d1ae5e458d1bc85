"""The desk's language and theme in the TUI: the language spoken from the start (the config
file's ``language``, else the environment's), the logged-in user's from login on (theirs,
else the desk's ``language`` setting), and a live switch from the palette ("Language:
日本語"): the open screens are made again in the new language, the user's language saved.

A mixin of the App (``cxdesk.app``). The theme and language a person chooses are saved in the
config file (``cxdesk.preferences``) and used at the next start. Database and file writes run
in thread workers; the language and the screens change on the UI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand
from textual.screen import ModalScreen, Screen

from cxdesk.errors import DeskError
from cxdesk.i18n import (
    LANGUAGES,
    _,
    current_language,
    language_code,
    use_language,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from textual.theme import Theme

    from cxdesk.config import Settings
    from cxdesk.screens.background import Failure
    from cxdesk.store.lean import LeanDesk, LoginRow
    from cxdesk.store.models import User

logger = logging.getLogger(__name__)


def fresh_copy(screen: Screen[Any], preset_username: str | None) -> Screen[Any] | None:
    """A new screen showing what ``screen`` shows, made in the current language; None for a
    dialog (a half-made choice is let go)."""
    from cxdesk.screens.login import LoginScreen
    from cxdesk.screens.ticket import TicketScreen

    if isinstance(screen, ModalScreen):
        return None
    if isinstance(screen, LoginScreen):
        return LoginScreen(preset_username)
    if isinstance(screen, TicketScreen):
        return TicketScreen(screen.key, pulled_at=screen.pulled_at)  # the undo window kept
    try:
        return type(screen)()
    except TypeError:  # a screen made with arguments this module does not know
        return None


def speak_configured(settings: Settings | None) -> None:
    """Speak the config file's ``language`` (if it names one) from the start."""
    wanted = settings.extra.get("language") if settings else None
    if code := language_code(str(wanted or "")):
        use_language(code)


class Speaking:
    """The App's language and theme: set at start and login, switched from the palette."""

    settings: Settings  # the App's
    user: User | LoginRow | None  # the App's
    preset_username: str | None  # the App's
    login_language: str | None = None
    """The logged-in user's language, read at login (``read_speech``, in the login worker)."""

    @property
    def engine(self) -> Engine:  # the App's
        raise NotImplementedError

    def remember_theme_choices(self) -> None:
        """Save each theme chosen from now on (the palette's) in the config file."""
        app: Any = self
        app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme: Theme) -> None:
        if theme.name != self.settings.extra.get("theme"):
            self.save_preference_later("theme", theme.name)

    def read_speech(self, user: User) -> None:
        """In the login worker: the user's language and the desk's time zone."""
        from cxdesk.local_time import use_zone
        from cxdesk.store.db import read_session
        from cxdesk.store.directory import desk_zone
        from cxdesk.store.user_language import spoken_language

        try:
            with read_session(self.engine) as session:
                self.login_language = spoken_language(session, user)
                use_zone(desk_zone(session))
        except Exception:  # the login goes on, in the language and zone it had
            logger.exception("reading %s's language failed", user.username)

    def read_speech_lean(self, lean: LeanDesk, user: LoginRow) -> None:
        """``read_speech`` through the lean reader (a login before the store has loaded). A
        read the driver fails (the database away: ``store.lean``'s ``DeskError``) is one
        warning line, and the login goes on in the language and zone it had."""
        from cxdesk.local_time import use_zone

        try:
            self.login_language, zone = lean.speech(user)
        except DeskError as error:  # the driver's: said in one line, not a traceback
            logger.warning("reading %s's language: %s", user.username, error)
            return
        except Exception:  # a bug: the login goes on all the same
            logger.exception("reading %s's language failed", user.username)
            return
        use_zone(zone)

    def speak_on_login(self) -> None:
        """On the UI thread, at login: speak the user's language (read by ``read_speech``)."""
        if self.login_language and self.login_language != current_language():
            use_language(self.login_language)
            self._translate_app()

    def speak_on_logout(self) -> None:
        """Back at the login screen: the terminal's language (the config's, else the
        environment's), not the last user's."""
        from cxdesk.i18n import language_from_environment

        configured = language_code(str(self.settings.extra.get("language") or ""))
        code = configured or language_from_environment()
        if (code or "en") != current_language():
            use_language(code)
            self._translate_app()
        self.login_language = None

    def language_commands(self) -> Iterable[SystemCommand]:
        for code, name in LANGUAGES.items():
            yield SystemCommand(
                _("Language: {language}").format(language=name),
                _("Show the desk in this language"),
                partial(self.switch_language, code),
            )

    def switch_language(self, code: str) -> None:
        """Speak ``code`` from now on: the open screens made again in it, and the choice
        saved (the user's language, and the config file's for the next start)."""
        use_language(code)
        self._translate_app()
        self.rebuild_screens()
        if self.user is not None:
            self.user.language = code
            self.save_user_language(self.user.username, code)
        self.save_preference_later("language", code)

    def _translate_app(self) -> None:
        """The App's own bindings in the current language (also those Textual adds itself,
        such as the palette's key in the footer)."""
        from cxdesk.i18n import translated_bindings

        app: Any = self
        translated_bindings(app)
        app.refresh_bindings()

    def rebuild_screens(self) -> None:
        """Replace every open screen (above Textual's default) by a fresh copy in the current
        language, keeping the order; a dialog on top is closed."""
        app: Any = self
        stack = app.screen_stack[1:]
        fresh = [copy for screen in stack if (copy := fresh_copy(screen, self.preset_username))]
        if not fresh:
            return
        while len(app.screen_stack) > 2:
            app.pop_screen()
        app.switch_screen(fresh[0])
        for screen in fresh[1:]:
            app.push_screen(screen)

    def save_user_language(self, username: str, code: str) -> None:
        """Save the user's language in a thread; a failure is logged only."""

        def save() -> None:
            from cxdesk.store.db import transaction
            from cxdesk.store.directory import get_user
            from cxdesk.store.user_language import set_user_language

            with transaction(self.engine) as session:
                user = get_user(session, username)
                set_user_language(session, actor=user, username=username, language=code)

        def failed(failure: Failure) -> None:
            logger.warning("saving %s's language failed: %s", username, failure.line)

        app: Any = self
        app.in_thread(save, group="speech", exclusive=False, failed=failed)

    def save_preference_later(self, key: str, value: str) -> None:
        """Write ``key = value`` into the config file; a problem is logged and said once."""
        from cxdesk.preferences import save_preference

        def saved(problem: str | None) -> None:
            if problem:
                logger.warning("%s", problem)
                app.notify(problem, severity="warning", markup=False)
            else:
                self.settings.extra[key] = value

        app: Any = self
        app.in_thread(partial(save_preference, key, value), saved, group="preferences",
                      exclusive=False)  # fmt: skip
