"""The login screen: username and password, checked in a worker by the CLI's own check.

``cxdesk.store.logins.check_password``, read lean before the store has loaded
(``store.lean.check_password_lean``; the store then does only what it writes; a lean read
failing, the store checks): a wrong pair (or an unknown or deactivated user) says only
``BAD_LOGIN`` after the same argon2 work and the same reads and writes;
repeated failures from this account are refused for a growing delay, counted in the database
(so quitting and starting again does not reset it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Header, Input, Label

from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _
from cxdesk.screens.background import Failure
from cxdesk.screens.base import DeskScreen
from cxdesk.widgets.footer import DeskFooter

if TYPE_CHECKING:
    from cxdesk.store.lean import LoginRow
    from cxdesk.store.models import User

logger = logging.getLogger(__name__)
BAD_LOGIN = N_("Unknown user or wrong password")  # the store's (cxdesk.store.logins), loaded later


class LoginScreen(DeskScreen):
    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen #login-box { width: 50; height: auto; border: round $primary; padding: 1 2; }
    LoginScreen #login-error { color: $error; height: auto; width: 1fr; }
    """

    def __init__(self, username: str | None) -> None:
        super().__init__()
        self._preset = username or ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="login-box"):
            yield Label(_("Log in to the desk"))
            yield Input(self._preset, placeholder=_("username"), id="username")
            yield Input(placeholder=_("password"), password=True, id="password")
            yield Label("", id="login-error")
        yield DeskFooter()

    def on_mount(self) -> None:
        self.query_one("#password" if self._preset else "#username", Input).focus()
        self.call_after_refresh(self.desk.start_background)  # once this screen is painted

    @on(Input.Submitted, "#username")
    def _next_field(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    def _submit(self) -> None:
        username = self.query_one("#username", Input).value.strip()
        password = self.query_one("#password", Input).value
        self.query_one("#login-error", Label).update(_("Checking…"))
        self.check_login(username, password)

    def check_login(self, username: str, password: str) -> None:
        """Check the pair in a worker: logged in, or the refusal under the form (a delay
        running, a wrong pair); the database away is said as every screen says it, with the
        form kept as typed, for Enter to try again."""

        def check() -> User | LoginRow | str:
            from cxdesk.store.lean import check_password_lean, login_source

            source = login_source()
            lean = self.desk.lean_desk()  # None once the store has loaded
            outcome, row = "store", None
            if lean is not None:
                try:
                    outcome, row = check_password_lean(lean, username, password, source=source)
                except DeskError as error:  # the driver's: the store checks (and says so)
                    logger.warning("the lean login read: %s", error)
                    outcome, row, lean = "store", None, None
            if outcome == "in" and row is not None and lean is not None:
                # Their arrival (presence) is written once the store has loaded (desk_opening).
                self.desk.read_speech_lean(lean, row)
                self.desk.read_home_lean(lean, row)  # their queues' first rows, here
                return row
            # The store loads here, not at import: the login screen is the app's first paint.
            from cxdesk.store import logins
            from cxdesk.store.db import is_unreachable, read_session
            from cxdesk.store.directory import get_user

            try:
                if outcome == "wrong":  # checked: counted, refused
                    logins.count_failed_login(self.engine, username, source=source)
                if outcome == "rehash" and row is not None:  # checked: the new hash written
                    logins.rehash_after_login(self.engine, row, password)
                    with read_session(self.engine) as session:
                        user = get_user(session, row.username)
                else:
                    user = logins.check_password(self.engine, username, password, source=source)
            except logins.BadLogin:
                return _(BAD_LOGIN)
            except DeskError as refused:
                if is_unreachable(refused):
                    raise
                return str(refused)  # a delay running
            self.desk.arrive(user)  # available before the home screen reads the desk
            self.desk.read_speech(user)  # their language and the desk's zone (tui_language)
            return user

        self.in_thread(check, self._checked, group="login", failed=self._check_failed)

    def _checked(self, outcome: User | LoginRow | str) -> None:
        if isinstance(outcome, str):
            self._refused(outcome)
        else:
            self._logged_in(outcome)

    def _check_failed(self, failure: Failure) -> None:
        self.show_failure(failure)
        self.query_one("#login-error", Label).update("")

    def _logged_in(self, user: User | LoginRow) -> None:
        self.desk.log_in(user)

    def _refused(self, reason: str) -> None:
        self.query_one("#login-error", Label).update(reason)
        password = self.query_one("#password", Input)
        password.value = ""
        password.focus()
