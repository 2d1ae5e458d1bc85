"""The desk's side of presence (``store.presence``): what the logged-in expert's state is, the
key that changes it, and the heartbeat that keeps it alive while the desk is open.

A mixin of the App (``cxdesk.app``). Logging in makes an expert (or an admin) available;
``p`` (or the palette's "Presence: ...") cycles available -> break -> away; logging out or
quitting makes them away at once. While someone is logged in, a thread beats every
``store.presence.HEARTBEAT_SECONDS``; a desk that dies stops beating and its expert reads as
away after the desk's timeout. Every database call runs in a thread worker; the state shown
(each screen's sub-title) is changed on the UI thread only. Becoming available lets an auto
queue hand out what waits at once (``engine.dispatch.auto_assign_and_dispatch``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.app import SystemCommand

from cxdesk.errors import DeskError
from cxdesk.i18n import _

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cxdesk.store.lean import LoginRow
    from cxdesk.store.models import User

logger = logging.getLogger(__name__)

STATES = ("available", "break", "away")
"""``store.models.PresenceState``'s values in the key's cycle (``store.presence.CYCLE``;
spelled here because the store loads after the first paint)."""
VOLUNTEER = "volunteer"
QUIT_SAVE_SECONDS = 5.0
"""Quitting waits this long at most for "away" to be written (else the timeout says it)."""


def presence_words(state: str) -> str:
    """A presence state in the current language ("Available", "Disponible", "対応可能")."""
    from cxdesk.labels import label

    return label(state)


class PresenceKeeping:
    """The App's presence: ``presence`` is what the logged-in expert's desk shows."""

    presence: str = ""
    """The logged-in expert's state as this desk set it ("" for a volunteer or nobody)."""

    user: User | LoginRow | None  # the App's

    @property
    def engine(self) -> Engine:  # the App's
        raise NotImplementedError

    def presence_label(self) -> str:
        """What each screen's sub-title adds after the user's name."""
        return f" · {presence_words(self.presence)}" if self.presence else ""

    def arrive(self, user: User, *, engine: Engine | None = None) -> None:
        """Logging in (the login's worker thread): an expert or admin is available, written
        before their home screen reads the desk (after its lean first fill, once the store
        has loaded: ``desk_opening``, which gives the ``engine`` it is opening)."""
        if user.role == VOLUNTEER:
            return
        try:
            self._save(user, "available", engine=engine)
        except Exception:  # a bug here must not stop the login
            logger.exception("presence not saved at login")

    def present_on_login(self, user: User | LoginRow) -> None:
        """Logged in: an expert or admin shows as available, and the heartbeat starts."""
        if user.role == VOLUNTEER:
            return
        self.presence = "available"
        self.beat_presence()

    def arrived(self, user: User | LoginRow) -> bool:
        """Whether ``user``'s arrival is written: logged in through the store (not the lean
        reader's row, replaced by the store's ``User`` as it writes the arrival)."""
        from cxdesk.store.lean import LoginRow

        return not isinstance(user, LoginRow)

    def absent_on_logout(self, user: User | LoginRow | None) -> None:
        if user is not None and self.presence and self.arrived(user):
            self.save_presence(user, "away")
        self.presence = ""

    async def absent_on_quit(self) -> None:
        """Quitting is logging out: "away" written (in a thread) before the app exits; nothing
        for a login whose arrival the store has not written yet (``desk_opening``: it is not
        written after this either)."""
        user, self.presence = self.user, ""
        if user is None or user.role == VOLUNTEER or not self.arrived(user):
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(self._write_away, user), QUIT_SAVE_SECONDS)
        except (TimeoutError, DeskError) as error:
            logger.warning("presence not saved at quit: %s", error)

    def _write_away(self, user: User | LoginRow) -> None:
        from cxdesk.store.db import transaction
        from cxdesk.store.directory import get_user
        from cxdesk.store.models import PresenceState
        from cxdesk.store.presence import set_presence

        with transaction(self.engine) as session:
            set_presence(session, get_user(session, user.username), PresenceState.away,
                         heartbeat=True)  # fmt: skip

    def action_cycle_presence(self) -> None:
        if self.presence:
            self.set_presence(STATES[(STATES.index(self.presence) + 1) % len(STATES)])

    def set_presence(self, state: str) -> None:
        """The expert chose ``state``: shown at once, saved in a worker."""
        if self.user is None or not self.presence:
            return
        self.presence = state
        self._show_presence()
        self.notify(  # type: ignore[attr-defined]
            _("You are now: {state}").format(state=presence_words(state)), title=_("Presence")
        )
        self.save_presence(self.user, state)

    def presence_commands(self) -> Iterable[SystemCommand]:
        if not self.presence:
            return
        for state in STATES:
            if state != self.presence:
                yield SystemCommand(
                    _("Presence: {state}").format(state=presence_words(state)),
                    _("Be {state} (p cycles)").format(state=presence_words(state)),
                    partial(self.set_presence, state),
                )

    def _show_presence(self) -> None:
        from cxdesk.screens.base import DeskScreen

        for screen in self.screen_stack:  # type: ignore[attr-defined]
            if isinstance(screen, DeskScreen):
                screen.show_user()

    def save_presence(self, user: User | LoginRow, state: str) -> None:
        app: Any = self
        app.in_thread(partial(self._save, user, state), group="presence-save", exclusive=False)

    def _save(self, user: User | LoginRow, state: str, *, engine: Engine | None = None) -> None:
        """Write ``state`` (with a heartbeat) and let an auto queue use a newly available
        expert (in a thread); a failure is logged (the next change or login tries again)."""
        from cxdesk.engine.dispatch import auto_assign_and_dispatch
        from cxdesk.store.db import transaction
        from cxdesk.store.directory import get_user
        from cxdesk.store.models import PresenceState
        from cxdesk.store.presence import set_presence

        engine = self.engine if engine is None else engine
        try:
            with transaction(engine) as session:
                fresh = get_user(session, user.username)
                set_presence(session, fresh, PresenceState(state), heartbeat=True)
            if state == "available":
                auto_assign_and_dispatch(engine)
        except DeskError as error:
            logger.warning("presence not saved: %s", error)

    def beat_presence(self) -> None:
        app: Any = self
        app.in_thread(self._beat_presence, group="presence-beat")

    def _beat_presence(self) -> None:
        """Every ``HEARTBEAT_SECONDS`` while someone is logged in with a presence
        (``store.presence.HEARTBEAT_SECONDS``), until cancelled (the app exits)."""
        from cxdesk.screens.background import cancel_event
        from cxdesk.store.lean import HEARTBEAT  # the store loads later (desk_opening)

        stop = cancel_event()
        while not stop.wait(HEARTBEAT):
            from cxdesk.store.db import transaction
            from cxdesk.store.directory import get_user
            from cxdesk.store.presence import beat

            user = self.user
            if user is None or not self.presence:
                return
            try:
                with transaction(self.engine) as session:
                    beat(session, get_user(session, user.username))
            except DeskError as error:  # the database away: the next beat tries again
                logger.warning("presence heartbeat: %s", error)
