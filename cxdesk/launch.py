"""The ``cxdesk`` command's entry point: the desk opens fast, everything else goes to the CLI.

``cxdesk [--user NAME]`` and ``cxdesk run [--user NAME]`` paint the login screen first and open
the desk's database behind it (Typer, SQLAlchemy and the store load in a worker thread while
the user types), so the desk appears in about the time a bare Textual app takes. Every other command
line, ``--help`` included, is the Typer CLI (``cxdesk.cli.main``): through the command server
(``cxdesk.command_client``) when one answers, else in this process.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not ``typing``'s: every scripted command passes here, ``typing`` costs
if TYPE_CHECKING:
    from typing import Any


def needs_terminal() -> str:
    """The one line ``cxdesk`` prints when its input or output is not a terminal."""
    from cxdesk.i18n import _

    return _(
        "Error: the desk needs a terminal (input or output is redirected); "
        "see `cxdesk --help` for commands that work in scripts"
    )


def desk_arguments(args: list[str]) -> dict[str, str | None] | None:
    """The options of ``[run] [--user NAME]``, or None when ``args`` is another command."""
    if args and args[0] == "run":
        args = args[1:]
    if not args:
        return {"user": None}
    if len(args) == 2 and args[0] == "--user" and not args[1].startswith("-"):
        return {"user": args[1]}  # not ``--user --help``: the CLI answers that
    if len(args) == 1 and args[0].startswith("--user="):
        return {"user": args[0].removeprefix("--user=")}
    return None


def open_desk(user: str | None, **run_options: Any) -> int:
    """Run the desk app; its exit code. ``run_options`` go to ``App.run`` (tests, benchmarks)."""
    from cxdesk.app import create_app
    from cxdesk.config import load_settings
    from cxdesk.errors import DeskError
    from cxdesk.i18n import _

    def engine() -> Any:
        from cxdesk.cli.common import desk_engine

        return desk_engine()

    try:
        app = create_app(engine, user=user, settings=load_settings())
    except DeskError as error:
        print(_("Error: {message}").format(message=error), file=sys.stderr)
        return 1
    app.run(**run_options)
    return app.return_code or 0


RUN_DIRECTLY = {"run", "board", "worker", "server"}
"""Commands that never go through the command server: the desk, long-running loops, the
server's own commands (``survey serve`` and ``mail fetch`` too, see ``served``)."""


def served(args: list[str]) -> bool:
    """Whether the command server may run ``cxdesk args``: a CLI command that neither opens
    the desk nor runs until stopped (those take over the terminal or live for hours)."""
    words = [arg for arg in _without_user(args) if not arg.startswith("-")][:2]
    if not words:
        return bool(args)  # ``--help``
    if words[0] in RUN_DIRECTLY:
        return False
    return words not in (["survey", "serve"], ["mail", "fetch"])


def _without_user(args: list[str]) -> list[str]:
    """``args`` without ``--user VALUE`` and ``--user=VALUE`` (the one option before the
    command: its value is not a command word)."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--user":
            skip = True
        elif not arg.startswith("--user="):
            kept.append(arg)
    return kept


def run_cli() -> None:
    """The CLI in this process (what ``main`` runs, and the command server's child)."""
    from cxdesk.cli.main import main as cli_main

    cli_main()


def main() -> None:
    from cxdesk.i18n import language_from_environment, use_language  # stdlib gettext only

    use_language(language_from_environment())  # the user's own, once known, replaces it
    options = desk_arguments(sys.argv[1:])
    if options is None:
        if served(sys.argv[1:]):
            from cxdesk.command_client import run_through_server

            try:
                code = run_through_server(sys.argv)
            except KeyboardInterrupt:  # before the server took it: nothing ran
                sys.exit(130)
            if code is not None:
                sys.exit(code)
        run_cli()
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(needs_terminal(), file=sys.stderr)
        sys.exit(1)
    try:
        sys.exit(open_desk(options["user"]))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
