"""The one line a desk screen shows while the desk database is unreachable.

Mounted by ``show_desk_notice`` (a desk screen when the app finds the database away, the
board when its own read fails) and removed when it is back; it sits just above the Footer, in
the theme's warning colour.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Static

from cxdesk.errors import DESK_UNREACHABLE
from cxdesk.i18n import _


class DeskNotice(Static):
    """``DESK_UNREACHABLE``, docked above the Footer."""

    DEFAULT_CSS = """
    DeskNotice {
        dock: bottom; height: 1; width: 100%; margin-bottom: 1; padding: 0 1;
        background: $warning; color: $text;
    }
    """

    def __init__(self) -> None:
        super().__init__(_(DESK_UNREACHABLE), markup=False)


def show_desk_notice(screen: Screen[object], unreachable: bool) -> None:
    """Mount the one line on ``screen`` (once), or remove it."""
    notices = screen.query(DeskNotice)
    if unreachable and not notices:
        screen.mount(DeskNotice())
    elif not unreachable and notices:
        notices.remove()
