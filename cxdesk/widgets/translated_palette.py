"""Textual's own words in the desk's language: its system commands (Quit, Theme, Keys...), the
command palette's and the theme picker's prompts, and the footer's "palette" key.

Textual writes them in English; ``TEXTUAL_WORDS`` puts them in the catalog and
``TranslatedPalette`` (mixed into the desk's ``CxDeskApp`` and the lone board's ``BoardApp``)
shows them through it. The footer's key is a Binding the App adds itself: ``translated_bindings``
translates it, as it does every Binding, once its words are in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.app import App, SystemCommand
from textual.screen import Screen

from cxdesk.i18n import N_, _

TEXTUAL_WORDS = (
    N_("palette"),  # the footer's key for the command palette, and its tooltip
    N_("Open the command palette"),
    N_("Theme"),
    N_("Change the current theme"),
    N_("Quit"),
    N_("Quit the application as soon as possible"),
    N_("Keys"),
    N_("Show help for the focused widget and a summary of available keys"),
    N_("Hide the keys and widget help panel"),
    N_("Maximize"),
    N_("Maximize the focused widget"),
    N_("Minimize"),
    N_("Minimize the widget and restore to normal size"),
    N_("Screenshot"),
    N_("Save an SVG 'screenshot' of the current screen"),
)
"""Textual's words (Textual 8.2) the desk shows: a new Textual's new ones stay English until
they are added here (the pseudo-language tests of the palette find them)."""


class TranslatedPalette(App[Any]):
    """An App whose command palette speaks the current language."""

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            yield command._replace(title=_(command.title), help=_(command.help))

    def action_command_palette(self) -> None:
        from textual.command import CommandPalette

        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(
                CommandPalette(placeholder=_("Search for commands…"), id="--command-palette")
            )

    def search_themes(self) -> None:
        from textual.command import CommandPalette
        from textual.theme import ThemeProvider

        self.push_screen(
            CommandPalette(providers=[ThemeProvider], placeholder=_("Search for themes…"))
        )
