"""The CLI's command index (``cxdesk/cli/commands.json``), written from the real command tree.

    .venv/bin/python scripts/command_index.py write    rewrite the index from the commands
    .venv/bin/python scripts/command_index.py check    fail, saying so, unless the index is
                                                       what ``write`` would write

``cxdesk --help`` lists the commands from the index without importing their modules
(``cxdesk.cli.lazy``); run ``write`` after adding, renaming or moving a command or changing its
help (``tests/test_cli_lazy.py`` fails until you do).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
import typer.main
from typer import _click as click
from typer.core import TyperGroup

INDEX = Path(__file__).resolve().parent.parent / "cxdesk" / "cli" / "commands.json"


def entries(group: click.Command, app: typer.Typer, root: bool) -> dict[str, Any]:
    """The index of ``group``'s commands (``app`` is the Typer app ``group`` was built from)."""
    assert isinstance(group, TyperGroup)
    apps = {info.name: info.typer_instance for info in app.registered_groups}
    callbacks = {
        info.name or typer.main.get_command_name(info.callback.__name__): info.callback
        for info in app.registered_commands
        if info.callback is not None
    }
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        entry: dict[str, Any] = {
            "help": command.help,
            "short_help": command.short_help,
            "hidden": command.hidden,
            "deprecated": command.deprecated,
        }
        if name in apps:
            sub_app = apps[name]
            assert sub_app is not None and not command.params, f"{name}: options on a group"
            entry["no_args_is_help"] = command.no_args_is_help
            entry["commands"] = entries(command, sub_app, root=False)
        else:
            callback = callbacks[name]
            module = sys.modules[callback.__module__]
            entry["module"] = module.__name__
            entry["typer"] = None if root else attribute_holding(module, app)
        found[name] = entry
    return found


def attribute_holding(module: Any, app: typer.Typer) -> str:
    for attribute, value in vars(module).items():
        if value is app:
            return attribute
    raise LookupError(f"{module.__name__} registers on a Typer app it has no name for")


def render() -> str:
    from cxdesk.cli.main import full_app

    app = full_app()
    commands = entries(typer.main.get_command(app), app, root=True)
    return json.dumps(commands, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["write"]:
        INDEX.write_text(render(), encoding="utf-8")
        return 0
    if argv == ["check"]:
        if INDEX.read_text(encoding="utf-8") != render():
            print(f"{INDEX} is out of date: run scripts/command_index.py write", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
