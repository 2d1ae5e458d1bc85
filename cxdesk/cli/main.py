"""``cxdesk``: the entry point. Builds the command tree lazily (``cxdesk.cli.lazy``: a command's
module is imported only when it runs or its help is asked, so ``cxdesk --help`` loads no
command); speaks the CLI's language (``use_cli_language``, help texts translated as commands are
built); turns DeskError into one line. ``full_app`` is the whole tree, built the eager way, for
``scripts/command_index.py`` and the tests that keep the index true."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
import typer.main
from typer import _click as click

from cxdesk.cli.help_text import translated_command
from cxdesk.cli.lazy import LazyGroup, lazy_root
from cxdesk.cli.output import err_console, error_line, use_cli_language
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _
from cxdesk.text import printable


def root_app(**typer_options: object) -> typer.Typer:
    """The ``cxdesk`` Typer app with its own option (``--user``) and no commands yet."""
    app = typer.Typer(
        name="cxdesk",
        help=N_("A closed-loop support desk that lives in the terminal."),
        no_args_is_help=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
        **typer_options,  # type: ignore[arg-type]
    )

    @app.callback(invoke_without_command=True)
    def _default(
        context: typer.Context,
        user: str | None = typer.Option(None, "--user", help="Preselect this username at login."),
    ) -> None:
        """With no command, open the desk (same as ``cxdesk run``; ``cxdesk --user NAME`` is
        ``cxdesk run --user NAME``)."""
        if context.invoked_subcommand is None:
            from cxdesk.cli import setup

            setup.run(user=user)

    return app


def full_app() -> typer.Typer:
    """Every command group registered at once (imports every command's module)."""
    from cxdesk.cli import (
        auth,
        batch,
        delivery,
        directory,
        loop,
        macros,
        mail_fetch,  # noqa: F401  (registers ``mail fetch``)
        mail_import,  # noqa: F401  (registers ``mail import``)
        setup,
        sla,
        sla_report,  # noqa: F401  (registers ``report sla``)
        ticket_show,  # noqa: F401  (registers ``ticket show`` and ``ticket attachment``)
        tickets,
        views,
        workflows,
    )
    from cxdesk.cli.mail import mail_app
    from cxdesk.cli.server import server_app

    _in_defining_order(tickets.ticket_app, tickets, ticket_show, macros)
    app = root_app()
    setup.register(app)
    auth.register(app)
    tickets.register(app)
    delivery.register(app)
    loop.register(app)
    views.register(app)
    app.add_typer(directory.user_app, name="user")
    app.add_typer(directory.team_app, name="team")
    app.add_typer(directory.queue_app, name="queue")
    app.add_typer(directory.status_app, name="status")
    app.add_typer(workflows.workflow_app, name="workflow")
    app.add_typer(macros.macro_app, name="macro")  # and ``ticket macro``
    app.add_typer(mail_app, name="mail")
    app.add_typer(sla.sla_app, name="sla")
    app.add_typer(server_app, name="server")
    batch.register(app)
    return app


def _in_defining_order(group: typer.Typer, *modules: Any) -> None:
    """Order ``group``'s commands by ``modules`` (the modules that register commands on it),
    then by where each is defined: the same order whichever of them a process imported first
    (a test, the command server's preloading), so ``--help`` and the index never differ."""
    order = [module.__name__ for module in modules]
    group.registered_commands.sort(
        key=lambda info: (
            order.index(info.callback.__module__) if info.callback else len(order),
            info.callback.__code__.co_firstlineno if info.callback else 0,
        )
    )


COMMAND_INDEX = Path(__file__).resolve().parent / "commands.json"
"""Every command's name, help and module (``scripts/command_index.py`` writes it)."""


def command_index() -> dict[str, Any]:
    index: dict[str, Any] = json.loads(COMMAND_INDEX.read_text(encoding="utf-8"))
    return index


def cli_command() -> click.Command:
    """The ``cxdesk`` command in the current language, its commands loaded as they are used."""
    group = typer.main.get_command(root_app(cls=LazyGroup))
    return translated_command(lazy_root(group, command_index()))  # type: ignore[arg-type]


def refusal_line(exc: BaseException) -> str | None:
    """The one line a user mistake or an unusable desk database becomes; None for a bug."""
    if isinstance(exc, DeskError):
        return printable(error_line(str(exc)))
    if isinstance(exc, OSError) or _is_database_error(exc):
        # The desk database is missing, unreachable, not a database, or its folder is not
        # writable: the user's setup, not a bug, so one line (the driver's first line).
        reason = getattr(exc, "orig", None) or exc
        first = (str(reason).strip().splitlines() or [type(exc).__name__])[0]
        if "unable to open database file" in first or "readonly database" in first:
            first += _(" (the file or its folder is missing or read-only; nothing was changed)")
        return error_line(_("Cannot use the desk database: {reason}").format(reason=first))
    return None


def _is_database_error(exc: BaseException) -> bool:
    """An SQLAlchemy error (only a command that imported SQLAlchemy can raise one)."""
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)


_prebuilt: list[click.Command] = []


def prebuild() -> None:
    """Build the whole click command tree now, for the next ``main()`` in this process: the
    command server (``cxdesk.command_server``) has imported every command anyway, builds the
    tree once before forking, and each child translates its own copy (the lazy tree answers the
    same help, ``tests/test_cli_lazy.py``)."""
    _prebuilt[:] = [typer.main.get_command(full_app())]


def main() -> None:
    use_cli_language()
    command = translated_command(_prebuilt.pop()) if _prebuilt else cli_command()
    try:
        command()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        line = refusal_line(exc)
        if line is None:
            raise
        err_console.print(line, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
