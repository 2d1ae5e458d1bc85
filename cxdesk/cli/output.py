"""Where the CLI writes and in which language: the two consoles (Rich, created on first use, so
a command that prints no table or line through them never imports Rich), the ``Error: ...``
line, and ``use_cli_language``. Light on purpose: ``cxdesk --help`` imports it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

from cxdesk.i18n import _, language_from_environment, use_language

if TYPE_CHECKING:
    from rich.console import Console


class _ConsoleOnFirstUse:
    """A Rich ``Console`` made (and Rich imported) when something first reads or sets it."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def _made(self) -> Console:
        made = object.__getattribute__(self, "_console")
        if made is None:
            from rich.console import Console

            options = dict(object.__getattribute__(self, "_options"))
            piped_width = options.pop("piped_width", None)
            if piped_width is not None and not sys.stdout.isatty():
                options["width"] = piped_width
            made = Console(**options)
            object.__setattr__(self, "_console", made)
        return cast("Console", made)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._made(), name, value)


# Markup off: names and comments are shown exactly as typed, "[red]" and all; control
# characters as the escapes ``printable`` makes (stored text never drives the terminal). When
# piped, a wide console keeps table cells (emails, titles) whole for scripts and logs.
console = cast("Console", _ConsoleOnFirstUse(highlight=False, markup=False, piped_width=200))
err_console = cast("Console", _ConsoleOnFirstUse(stderr=True, highlight=False, markup=False))


def fresh_consoles() -> None:
    """Forget both consoles, so the next use makes them for the standard streams as they are
    then: the command server's child (``cxdesk.command_server``) calls it once it has taken the
    caller's."""
    for proxy in (console, err_console):
        object.__setattr__(proxy, "_console", None)


def use_cli_language() -> str:
    """Make the CLI speak the environment's language (``LANGUAGE``, ``LC_ALL``,
    ``LC_MESSAGES``, ``LANG``; else English) from now on: its help, output and errors. The one
    place the CLI's language is chosen; ``main()`` calls it before the commands are built."""
    return use_language(language_from_environment())


def error_line(message: str) -> str:
    """The one line a refusal prints: ``Error: ...`` in the CLI's language."""
    return _("Error: {message}").format(message=message)
