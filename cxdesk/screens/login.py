"""The login screen: username and password, checked with argon2 in a worker.

A wrong pair (or an unknown or deactivated user) says only ``BAD_LOGIN``; after repeated
failures each attempt waits longer before it is checked, so guessing is slow.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Footer, Header, Input, Label
from textual.worker import Worker, WorkerState

from cxdesk.errors import NotFound
from cxdesk.screens.base import DeskScreen

if TYPE_CHECKING:
    from cxdesk.store.models import User

BAD_LOGIN = "Unknown user or wrong password"
FREE_ATTEMPTS = 2
MAX_DELAY_SECONDS = 30.0


def failure_delay(failures: int) -> float:
    """Seconds to wait before checking an attempt after ``failures`` failed ones."""
    if failures < FREE_ATTEMPTS:
        return 0.0
    return min(2.0 ** (failures - FREE_ATTEMPTS), MAX_DELAY_SECONDS)


class LoginScreen(DeskScreen):
    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen #login-box { width: 50; height: auto; border: round $primary; padding: 1 2; }
    LoginScreen #login-error { color: $error; height: auto; }
    """

    def __init__(self, username: str | None) -> None:
        super().__init__()
        self._preset = username or ""
        self.failures = 0
        """Failed attempts on this screen; each one after the free ones doubles the wait."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="login-box"):
            yield Label("Log in to the desk")
            yield Input(self._preset, placeholder="username", id="username")
            yield Input(placeholder="password", password=True, id="password")
            yield Label("", id="login-error")
        yield Footer()

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
        self.query_one("#login-error", Label).update("Checking…")
        self.check_login(username, password, failure_delay(self.failures))

    @work(thread=True, exclusive=True, exit_on_error=False)
    def check_login(self, username: str, password: str, delay: float) -> None:
        # The store loads here, not at import: the login screen is the app's first paint.
        from cxdesk.store.db import read_session
        from cxdesk.store.directory import get_user
        from cxdesk.store.passwords import verify_password

        time.sleep(delay)
        user: User | None = None
        try:
            with read_session(self.engine) as session:
                user = get_user(session, username)
        except NotFound:
            user = None
        if user is not None and user.active and verify_password(user.password_hash, password):
            self.app.call_from_thread(self._logged_in, user)
        else:
            self.app.call_from_thread(self._refused)

    def _logged_in(self, user: User) -> None:
        self.desk.log_in(user)

    def _refused(self) -> None:
        self.failures += 1
        self.query_one("#login-error", Label).update(BAD_LOGIN)
        password = self.query_one("#password", Input)
        password.value = ""
        password.focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A check that could not read the desk (the database away): the form is usable
        again; the error itself is reported by ``DeskScreen``."""
        if event.state == WorkerState.ERROR:
            self.query_one("#login-error", Label).update("")
