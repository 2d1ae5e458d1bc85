"""The desk's command palette: Textual's, with the app's commands found by their name in the
current language or in English (``BilingualCommands``), and its "No matches found" in the
current language.

It builds on two private parts of Textual 8.2's ``CommandPalette`` (``_provider_classes``,
``_start_no_matches_countdown``); ``tests/test_palette_words.py`` fails if a new Textual
changes them. Imported when the palette opens (``TranslatedPalette``), not at start-up.
"""

from __future__ import annotations

from rich.align import Align
from rich.text import Text
from textual.command import CommandList, CommandPalette, Hit, Hits, Provider
from textual.system_commands import SystemCommandsProvider
from textual.widgets.option_list import Option

from cxdesk.i18n import _, current_language, in_language


class BilingualCommands(SystemCommandsProvider):
    """The app's commands (``get_system_commands``), found by their name in the current
    language or in English: in Japanese "kanban" finds カンバン, "language" 言語: 日本語. A
    command found by its English name only is listed with it: "カンバン (Kanban)"."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        commands = list(self.app.get_system_commands(self.screen))
        english = [command.title for command in commands]
        if current_language() != "en":
            with in_language("en"):  # this task only: the same commands, named in English
                named = [command.title for command in self.app.get_system_commands(self.screen)]
            if len(named) == len(commands):
                english = named
        for command, source in zip(commands, english, strict=True):
            shown = command.title
            score = matcher.match(shown)
            if not score and source != shown and matcher.match(source):
                shown = f"{command.title} ({source})"
                score = matcher.match(shown)
            if score > 0:
                yield Hit(score, matcher.highlight(shown), command.callback, help=command.help)


class DeskPalette(CommandPalette):
    """Textual's command palette with the desk's commands found in two languages
    (``BilingualCommands`` in place of Textual's provider) and "No matches found" translated."""

    @property
    def _provider_classes(self) -> set[type[Provider]]:
        return {
            BilingualCommands if provider is SystemCommandsProvider else provider
            for provider in super()._provider_classes
        }

    def _start_no_matches_countdown(self, search_value: str) -> None:
        """Textual's countdown (it adds an English "No matches found" option), then the
        option's words in the current language."""
        super()._start_no_matches_countdown(search_value)
        timer = self._no_matches_timer
        if timer is None:
            return
        timer.stop()

        def no_matches() -> None:
            self._no_matches_timer = None
            if not search_value:
                self._list_visible = False
                return
            words = Align.center(Text(_("No matches found"), style="not bold"))
            self.query_one(CommandList).add_option(
                Option(words, disabled=True, id=self._NO_MATCHES)
            )
            self._list_visible = True

        self._no_matches_timer = self.set_timer(self._NO_MATCHES_COUNTDOWN, no_matches)
