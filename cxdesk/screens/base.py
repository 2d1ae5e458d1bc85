"""What every desk screen shares: the engine, the logged-in user, the clock, reporting errors,
and reloading when the desk changed (``DeskChanged``, sent by the app's change watcher)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual.message import Message
from textual.screen import Screen

from cxdesk.errors import DeskError
from cxdesk.text import printable

if TYPE_CHECKING:  # the login screen draws before SQLAlchemy has loaded (see cxdesk/launch.py)
    from sqlalchemy import Engine
    from sqlmodel import Session

    from cxdesk.app import CxDeskApp
    from cxdesk.store.models import User

Read = TypeVar("Read")


def shown_time(value: object) -> str:
    """A stored time (aware datetime or ISO text) in the local time zone, to the minute."""
    if value is None or value == "":
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


class DeskChanged(Message, bubble=False):
    """The desk changed (here or in another terminal): the screen on top reloads its data."""


class DeskScreen(Screen[Any]):
    """A screen of the desk app; its workers use ``self.engine`` and act as ``self.user``.

    A screen that shows desk data overrides ``reload`` (start its loading worker); it is
    called when the desk changed while the screen is on top.
    """

    @property
    def desk(self) -> CxDeskApp:
        return cast("CxDeskApp", self.app)

    @property
    def engine(self) -> Engine:
        return self.desk.engine

    @property
    def user(self) -> User:
        user = self.desk.user
        if user is None:
            raise DeskError("Log in first")
        return user

    def report(self, error: DeskError) -> None:
        """Show a refused action's one-line message (thread-safe)."""
        self.app.notify(printable(str(error)), severity="error", markup=False)

    def read_then(self, read: Callable[[Session], Read], show: Callable[[Read], object]) -> None:
        """Run ``read`` on a read session in a thread worker, then ``show`` its result on the
        UI thread; a refused read is reported instead."""
        from cxdesk.store.db import read_session  # SQLAlchemy loads after the first screen

        def reading() -> None:
            try:
                with read_session(self.engine) as session:
                    result = read(session)
            except DeskError as error:
                self.report(error)
                return
            self.app.call_from_thread(show, result)

        self.run_worker(reading, thread=True, exit_on_error=False)

    def now(self) -> datetime:
        """The app's clock (aware UTC): what waits and ages are measured against."""
        return self.desk.clock()

    def reload(self) -> None:
        """Read what the screen shows again, in a worker; nothing by default."""

    def on_desk_changed(self, message: DeskChanged) -> None:
        self.reload()
