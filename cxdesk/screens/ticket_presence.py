"""The ticket screen's presence line: "Kenji is editing · Maya is viewing" (issue 16, item 6).

``TicketPresence`` beats every ``BEAT_SECONDS`` from a timer: the timer only decides the mode
(editing while a dialog is open over the ticket screen: a change, note, reply...), and a thread
worker writes the heartbeat and reads the others (``store.ticket_presence.beat``); nothing
touches the database on the event loop. When the screen goes, its row is deleted from a thread.
The line says it in words (not colour alone) and is hidden while nobody else is there.
"""

from __future__ import annotations

from functools import partial
from typing import cast
from uuid import uuid4

from textual.screen import ModalScreen
from textual.widgets import Static

from cxdesk.screens.background import Background, ignore_failure
from cxdesk.store.db import transaction
from cxdesk.store.ticket_presence import BEAT_SECONDS, beat, leave, viewers_line


class TicketPresence(Background, Static):
    """Who else has this ticket open, kept fresh by this terminal's own heartbeat."""

    DEFAULT_CSS = """
    TicketPresence { color: $accent; text-style: bold; height: auto; }
    """

    def __init__(self, key: str, **kwargs: object) -> None:
        super().__init__("", markup=False, **kwargs)  # type: ignore[arg-type]
        self.key = key
        self.terminal = uuid4().hex
        """This screen's own row: two terminals of one user are two rows."""

    def on_mount(self) -> None:
        self.display = False
        self.set_interval(BEAT_SECONDS, self._tick)
        self._tick()

    def _tick(self) -> None:
        editing = isinstance(self.app.screen, ModalScreen) and self.screen is not self.app.screen
        self.send_beat("editing" if editing else "viewing")

    def send_beat(self, mode: str) -> None:
        user = getattr(self.app, "user", None)
        if user is None or user.id is None:
            return
        user_id = user.id

        def send() -> str:
            with transaction(self.app.engine) as session:  # type: ignore[attr-defined]
                others = beat(session, key=self.key, user_id=user_id, terminal=self.terminal,
                              mode=mode)  # fmt: skip
            return viewers_line(others)

        # The desk unreachable: the app says so; the next beat tries again.
        self.in_thread(send, self._show, group="ticket-presence", failed=ignore_failure)

    def _show(self, line: str) -> None:
        self.update(line)
        self.display = bool(line)

    def on_unmount(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        # On the app (this widget is going); a failure is no matter: the heartbeat goes stale
        # in a few seconds anyway.
        cast(Background, self.app).in_thread(partial(_leave, engine, self.key, self.terminal),
                                             group="ticket-presence-leave", exclusive=False,
                                             failed=ignore_failure)  # fmt: skip


def _leave(engine: object, key: str, terminal: str) -> None:
    with transaction(engine) as session:  # type: ignore[arg-type]
        leave(session, key=key, terminal=terminal)
