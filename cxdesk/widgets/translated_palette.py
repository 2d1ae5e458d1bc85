"""Textual's own words in the desk's language: its system commands (Quit, Theme, Keys...), the
command palette's and the theme picker's prompts, its "No matches found", and the footer's
"palette" key; and a palette that finds a command by its English name too.

Textual writes them in English; ``TEXTUAL_WORDS`` puts them in the catalog and
``TranslatedPalette`` (mixed into the desk's ``CxDeskApp`` and the lone board's ``BoardApp``)
shows them through it, in a ``DeskPalette``. The footer's key is a Binding the App adds itself:
``translated_bindings`` translates it, as it does every Binding, once its words are in the
catalog.

The palette itself is ``cxdesk.widgets.desk_palette``, imported when it is opened.
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
    N_("No matches found"),
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

        from cxdesk.widgets.desk_palette import DeskPalette

        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(
                DeskPalette(placeholder=_("Search for commands…"), id="--command-palette")
            )

    def search_themes(self) -> None:
        from textual.theme import ThemeProvider

        from cxdesk.widgets.desk_palette import DeskPalette

        self.push_screen(
            DeskPalette(providers=[ThemeProvider], placeholder=_("Search for themes…"))
        )
