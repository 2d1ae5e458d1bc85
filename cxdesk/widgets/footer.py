"""``DeskFooter``: Textual's Footer, built once with its keys and rebuilt only when they change.

Textual's Footer mounts empty and rebuilds all its keys (a widget each, styled anew) after
every bindings change its screen announces: a focus moving, the screen stack changing, a key
typed into some inputs, the app's ``refresh_bindings``. From the Enter of a login to the
queues drawn that was six rebuilds of 5-15 ms each on the UI thread, half of them for the
login screen being replaced, with the same keys every time.

This one, mounted empty as Footer is (the screen's focus, which changes the keys, is set once
the screen has mounted), rebuilds after a bindings change only when what it shows differs (the
shown bindings, their keys' display, whether each is enabled, their tooltips), once however
many changes were announced meanwhile, and not while its screen is not the one on top (replaced,
or under another screen or a dialog: a screen coming back announces a change, looked at then).
"""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer


class DeskFooter(Footer):
    """A Footer that rebuilds only when the keys it shows change."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: Hashable = None
        """What the keys drawn show (``_keys_shown``), as of the last compose."""
        self._look_pending = False

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._shown = self._keys_shown()
        yield from super().compose()

    def _keys_shown(self) -> Hashable:
        """Everything ``Footer.compose`` draws from: each shown binding (and the palette's),
        how its key is displayed, whether it is enabled, its tooltip."""
        app = self.app
        palette = app.COMMAND_PALETTE_BINDING
        return (
            self.show_command_palette and app.ENABLE_COMMAND_PALETTE,
            tuple(
                (key, binding, enabled, tooltip, app.get_key_display(binding))
                for key, (_node, binding, enabled, tooltip) in self.screen.active_bindings.items()
                if binding.show or key == palette
            ),
        )

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True  # Footer's: its first compose (mounted) was empty
        if not screen.app.app_focus or self._look_pending:
            return
        if self.is_attached and screen is self.screen and screen.is_active:
            self._look_pending = True
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        self._look_pending = False
        if not (self.is_attached and self.screen.is_active):
            return
        if self._keys_shown() != self._shown:
            await self.recompose()
