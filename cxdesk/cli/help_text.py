"""``cxdesk --help`` in the CLI's language.

Typer fixes a command's texts when the module is imported (option ``help=``, marked ``N_``;
a command's docstring, which ``scripts/catalogs.py`` extracts from ``cxdesk/cli``), before any
language is chosen. ``translated_command`` translates them on the click command tree that
``main()`` builds for this run, after ``use_cli_language``; and it routes the words Typer prints
itself ("Options", "Commands", "required") through the desk's catalog (``TYPER_TEXTS``)
instead of the stdlib's global gettext domain it was written against.
"""

from __future__ import annotations

from typing import Any

import typer.core
from typer import _click as click
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup

from cxdesk.i18n import N_, _

TYPER_TEXTS = (
    N_("Usage: "),
    N_("Show this message and exit."),
    N_("Arguments"),
    N_("Options"),
    N_("Commands"),
    N_("default: {default}"),
    N_("required"),
    N_("env var: {var}"),
    N_("(dynamic)"),
    N_("Missing command."),
    N_("No such command {name!r}."),
    N_("Aborted!"),
)
"""What Typer itself says through gettext (section titles, option notes, some errors), and the
usage line's prefix and the help option's text, which its vendored click writes without
gettext (``_Formatter``, ``_translated_help_option``). Click's usage errors ("No such option")
are translated by ``cxdesk.cli.usage_errors``."""


class _Formatter(HelpFormatter):
    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, _("Usage: ") if prefix is None else prefix)


class _Context(click.Context):
    formatter_class = _Formatter


def translated_command(command: click.Command) -> click.Command:
    """``command`` (the root ``main()`` runs) and every subcommand built so far with their help
    texts in the current language (a lazy group's commands are translated as they are built:
    ``cxdesk.cli.lazy``), its usage errors too (``cxdesk.cli.usage_errors``)."""
    from cxdesk.cli.usage_errors import translating_usage_errors

    typer.core._ = _  # Typer's ``from gettext import gettext as _``
    _translate_tree(command)
    return translating_usage_errors(command)


def _translate_tree(command: click.Command) -> None:
    translate_one(command)
    if isinstance(command, TyperGroup) and type(command.commands) is dict:
        for subcommand in command.commands.values():
            _translate_tree(subcommand)


def translate_one(command: click.Command) -> None:
    """``command``'s own help texts (not its subcommands') in the current language."""
    command.context_class = _Context
    make_help_option = command.get_help_option

    def translated_help_option(ctx: click.Context) -> Any:
        option = make_help_option(ctx)
        if option is not None and option.help == "Show this message and exit.":
            option.help = _(option.help)
        return option

    command.get_help_option = translated_help_option  # type: ignore[method-assign]
    if command.help:
        command.help = _(command.help)
    if command.short_help:
        command.short_help = _(command.short_help)
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            param.help = _(text)  # type: ignore[attr-defined]
