"""Keys handled one at a time, so a burst (a badge or barcode scanner, a password manager,
``tmux send-keys "maya" Tab "demo" Enter``) fills a form as if typed slowly.

Why (Textual 8.2): the driver reads the terminal in chunks and its parser turns a chunk into
one Key event per character (a burst is not a paste: only a bracketed paste is). The App
routes each key the moment it takes it from its queue: it posts it to the focused widget's
queue. Tab (the screen's ``focus_next``) and Enter (the Input's ``submit``) are bindings that
run only once the key has bubbled back up to the App, and ``Input.Submitted`` (the login's
"next field") and ``Widget.focus`` run later still. So the App has already posted the rest of
the burst to the first field before focus moves: ``mayademo`` in the username. A real paste
(a bracketed paste, one ``events.Paste``) is not touched.

A mixin of the App (``cxdesk.app``): a key from the terminal is routed only once the previous
one has settled. It has settled when every message pump from the focused widget up to the App
has handled what was queued on it after the key, twice over (the key and its bubble, then the
messages it set off: ``Input.Submitted``, the deferred ``set_focus``). Meanwhile later keys
wait, in order. A pump that has closed is passed over; ``SETTLE_SECONDS`` is a last resort so
input can never stop for good.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from textual import events
from textual.app import App
from textual.dom import DOMNode
from textual.timer import Timer

SETTLE_ROUNDS = 2
"""Walks up the focus chain after a key: its own handling and bubble, then what it set off."""
RELEASING = -1
"""``_settling`` while the next held key is on its way to ``_route_key``."""
SETTLE_SECONDS = 1.0
"""A key not settled by then (a pump that stopped without closing) lets the next one go."""


class KeysInOrder(App[None]):
    """Route each key from the terminal only after the one before it has been handled."""

    def __init__(self) -> None:
        super().__init__()
        self._held_keys: deque[events.Key] = deque()
        self._settling: int = 0
        """The number of the key settling now; 0 when none is."""
        self._keys_routed = 0
        self._settle_timer: Timer | None = None

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
        elif self._settling:
            self._held_keys.append(event)
        else:
            await self._route_key(event)

    async def _route_key(self, key: events.Key) -> None:
        self._keys_routed += 1
        number = self._settling = self._keys_routed
        await super().on_event(key)
        self._settle_timer = self.set_timer(SETTLE_SECONDS, lambda: self._settled(number))
        self._settle(number, SETTLE_ROUNDS)

    def _settle(self, number: int, rounds: int) -> None:
        """Run one round: a callback on each pump from the focused widget (or the screen) up
        to the App, each queued behind what that pump still has to handle."""
        start: DOMNode = self.focused or (self.screen if self.screen_stack else self)
        chain = list(start.ancestors_with_self)
        if chain[-1] is not self:
            chain.append(self)
        self._after(chain, 0, number, rounds)

    def _after(self, chain: list[DOMNode], index: int, number: int, rounds: int) -> None:
        if number != self._settling:
            return  # released by the timer
        if index == len(chain):
            if rounds > 1:
                self._settle(number, rounds - 1)
            else:
                self._settled(number)
            return
        step: Callable[[], None] = lambda: self._after(chain, index + 1, number, rounds)  # noqa: E731
        if not chain[index].call_later(step):  # the pump has closed: nothing more comes of it
            step()

    def _settled(self, number: int) -> None:
        """The key ``number`` has been handled: route the next one held, if any."""
        if number != self._settling:
            return
        if self._settle_timer is not None:
            self._settle_timer.stop()
            self._settle_timer = None
        if self._held_keys:  # keys still arriving meanwhile queue behind it
            self._settling = RELEASING
            self.call_later(self._route_key, self._held_keys.popleft())
        else:
            self._settling = 0
