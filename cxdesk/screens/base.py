"""What every desk screen shares: the engine, the logged-in user, and reporting errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine
from textual.screen import Screen

from cxdesk.errors import DeskError
from cxdesk.store.models import User

if TYPE_CHECKING:
    from cxdesk.app import CxDeskApp


class DeskScreen(Screen[Any]):
    """A screen of the desk app; its workers use ``self.engine`` and act as ``self.user``."""

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
        self.app.notify(str(error), severity="error", markup=False)
