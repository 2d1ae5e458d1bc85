"""The command palette opens a ticket by its key: typing ``EXP-12`` (any case) offers
"Open EXP-12 — its title" to whoever may open tickets (not a volunteer).

The lookup runs in a thread (``asyncio.to_thread``), never on the event loop; only text shaped
like a key (letters, a dash, digits) is looked up.
"""

from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.command import Hit, Hits, Provider

from cxdesk.i18n import _
from cxdesk.text import printable

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cxdesk.app import CxDeskApp

KEY_SHAPE = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*-\d+)\s*")


def key_in(query: str) -> str | None:
    """The ticket key ``query`` is, upper-cased, or None when it is not shaped like one."""
    found = KEY_SHAPE.fullmatch(query)
    return found.group(1).upper() if found else None


def ticket_title(engine: Engine, key: str) -> str | None:
    """The title of the ticket with ``key``, or None when there is none (a thread's call)."""
    from cxdesk.errors import DeskError
    from cxdesk.store.db import read_session
    from cxdesk.store.tickets import get_ticket

    try:
        with read_session(engine) as session:
            return get_ticket(session, key).title
    except DeskError:  # no such ticket, or the desk unreachable (the app's one line says so)
        return None


class TicketKeys(Provider):
    """Offers "Open KEY — title" for a query that is an existing ticket's key."""

    async def search(self, query: str) -> Hits:
        key = key_in(query)
        app = cast("CxDeskApp", self.app)
        if key is None or not app.may_open_tickets():
            return
        title = await asyncio.to_thread(ticket_title, app.engine, key)
        if title is None:
            return
        shown = _("Open {key} — {title}").format(key=key, title=printable(title, lines=False))
        yield Hit(
            1.0,
            Text(shown),
            partial(app.open_ticket, key),
            text=shown,
            help=_("Open this ticket"),
        )
