"""``cxdesk``: the entry point. Registers every command group; speaks the CLI's language
(``use_cli_language``, help texts translated on the built commands); turns DeskError into one
line."""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer import _click as click

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
from cxdesk.cli.common import err_console, error_line, use_cli_language
from cxdesk.cli.help_text import translated_command
from cxdesk.cli.mail import mail_app
from cxdesk.cli.server import server_app
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _
from cxdesk.text import printable

app = typer.Typer(
    name="cxdesk",
    help=N_("A closed-loop support desk that lives in the terminal."),
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def _default(
    context: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Preselect this username at login."),
) -> None:
    """With no command, open the desk (same as ``cxdesk run``; ``cxdesk --user NAME`` is
    ``cxdesk run --user NAME``)."""
    if context.invoked_subcommand is None:
        setup.run(user=user)


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


def refusal_line(exc: BaseException) -> str | None:
    """The one line a user mistake or an unusable desk database becomes; None for a bug."""
    if isinstance(exc, DeskError):
        return printable(error_line(str(exc)))
    if isinstance(exc, SQLAlchemyError | OSError):
        # The desk database is missing, unreachable, not a database, or its folder is not
        # writable: the user's setup, not a bug, so one line (the driver's first line).
        reason = getattr(exc, "orig", None) or exc
        first = (str(reason).strip().splitlines() or [type(exc).__name__])[0]
        if "unable to open database file" in first or "readonly database" in first:
            first += _(" (the file or its folder is missing or read-only; nothing was changed)")
        return error_line(_("Cannot use the desk database: {reason}").format(reason=first))
    return None


_prebuilt: list[click.Command] = []


def prebuild() -> None:
    """Build the click command tree now, for the next ``main()`` in this process: the command
    server (``cxdesk.command_server``) builds it once before forking, and each child
    translates its own copy."""
    _prebuilt[:] = [typer.main.get_command(app)]


def main() -> None:
    use_cli_language()
    built = _prebuilt.pop() if _prebuilt else typer.main.get_command(app)
    command = translated_command(built)
    try:
        command()
    except (DeskError, SQLAlchemyError, OSError) as exc:
        err_console.print(refusal_line(exc), soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
