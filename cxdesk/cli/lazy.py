"""The command tree, loaded a command at a time (Click's "lazily loading subcommands").

``cxdesk --help``, ``cxdesk GROUP --help`` and a mistyped command answer from the index
(``cxdesk/cli/commands.json``: each command's name, help text and the module that defines
it, written by ``scripts/command_index.py`` from the real tree), without importing any command's
module, so without SQLAlchemy, the store or the engine. A command's module is imported when the
command runs or its own ``--help`` is asked, and only that module (and what it imports): the
command itself is Typer's, built from the module's Typer app as ``typer.main.get_command``
would build it, and its help translated like the rest (``help_text``).

``tests/test_cli_lazy.py`` checks that the index is what ``scripts/command_index.py`` writes
today and that every ``--help`` of the lazy tree is the real tree's.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
import typer.main
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from cxdesk.cli.help_text import translate_one

Entry = dict[str, Any]
"""A command in the index: ``help`` (its English help, the catalog's msgid), ``short_help``,
``hidden``, ``deprecated``; a leaf has ``module`` and ``typer`` (the attribute of ``module``
holding the Typer app it is registered on; None: ``module.register(app)`` adds it to the root);
a group has ``no_args_is_help`` and ``commands`` (name -> Entry)."""


class LazyGroup(TyperGroup):
    """A Typer group whose subcommands come from the index, each loaded when first used."""

    commands: LazyCommands

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing:  # the help's command list: the index's short help is enough
            return self.commands.listed(cmd_name)
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # Typer's reads ``.items()``, which would build them all

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's subcommands by name, in the index's order; a command is built on first use."""

    def __init__(self, index: dict[str, Entry]) -> None:
        self._index = index
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            self._loaded[name] = _build(name, self._index[name])
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._index
        yield from (name for name in self._loaded if name not in self._index)

    def __len__(self) -> int:
        return len(self._index.keys() | self._loaded.keys())

    def listed(self, name: str) -> click.Command | None:
        """The command as a help list shows it: itself if loaded, else a stand-in with its
        index entry's texts (translated), for ``get_short_help_str``."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self._index.get(name)
        if entry is None:
            return None
        stand_in = TyperCommand(name, **_texts(entry))
        translate_one(stand_in)
        return stand_in


def lazy_root(group: TyperGroup, index: dict[str, Entry]) -> LazyGroup:
    """``group`` (the root Typer's click group, built with ``cls=LazyGroup``) with the index's
    commands under it."""
    assert isinstance(group, LazyGroup)
    group.commands = LazyCommands(index)
    return group


def _build(name: str, entry: Entry) -> click.Command:
    if "commands" in entry:
        group = LazyGroup(
            name=name,
            no_args_is_help=entry["no_args_is_help"],
            rich_markup_mode=None,
            **_texts(entry),
        )
        group.commands = LazyCommands(entry["commands"])
        command: click.Command = group
    else:
        command = _leaf(name, entry["module"], entry["typer"])
    translate_one(command)
    return command


def _texts(entry: Entry) -> dict[str, Any]:
    """What a command's help shows of it, as the index has it."""
    return {key: entry[key] for key in ("help", "short_help", "hidden", "deprecated")}


def _leaf(name: str, module_name: str, typer_name: str | None) -> click.Command:
    """The Typer command ``name`` as ``typer.main.get_command`` builds it, from its module."""
    module = importlib.import_module(module_name)
    if typer_name is None:
        app = typer.Typer()
        module.register(app)
    else:
        app = getattr(module, typer_name)
    for info in app.registered_commands:
        assert info.callback is not None
        if (info.name or typer.main.get_command_name(info.callback.__name__)) == name:
            return typer.main.get_command_from_info(
                info, pretty_exceptions_short=True, rich_markup_mode=None
            )
    raise LookupError(f"{module_name} registers no command {name!r}")
