"""The ``cxdesk`` command's entry point: the desk opens fast, everything else goes to the CLI.

``cxdesk [--user NAME]`` and ``cxdesk run [--user NAME]`` paint the login screen first and open
the desk's database behind it (Typer, SQLAlchemy and the store load in a worker thread while
the user types), so the desk appears in about the time a bare Textual app takes. Every other command
line, ``--help`` included, is the Typer CLI (``cxdesk.cli.main``).
"""

from __future__ import annotations

import sys
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


def main() -> None:
    from cxdesk.i18n import language_from_environment, use_language  # stdlib gettext only

    use_language(language_from_environment())  # the user's own, once known, replaces it
    options = desk_arguments(sys.argv[1:])
    if options is None:
        from cxdesk.cli.main import main as cli_main

        cli_main()
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
