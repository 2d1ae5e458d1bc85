"""``cxdesk batch FILE|-``: many commands in one process, one per line, each reported by line.

A script that calls ``cxdesk`` a hundred times pays the interpreter's start and the imports a
hundred times; a batch pays them once, keeps one engine (connection pool) and proves each acting
user once (a password is checked once per user, not once per line; a wrong one is refused once
and not tried again on every line, which would pile up login failures).

Each line is what would follow ``cxdesk`` on a command line (a leading ``cxdesk`` is allowed),
split as a POSIX shell splits words (quotes, backslashes; ``#`` starts a comment; blank lines
are skipped). Each line runs on its own: its output goes to stdout as the command prints it, a
refusal is its usual one ``Error: ...`` line prefixed with ``line N:`` on stderr and changes
nothing, and the next line runs (``--stop`` stops at the first failure). At the end one line on
stderr counts what ran; the exit code is 1 if any line failed.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from cxdesk.cli.output import err_console, error_line, use_cli_language
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, ngettext

NOT_IN_A_BATCH = {
    "batch": N_("a batch cannot run another batch"),
    "run": N_("the desk needs a terminal"),
}
MAX_LINE = 10_000


def register(app: typer.Typer) -> None:
    @app.command()
    def batch(
        source: Annotated[str, typer.Argument(help=N_("A file of commands, or - for stdin."))],
        stop: Annotated[
            bool, typer.Option("--stop", help=N_("Stop at the first line that fails."))
        ] = False,
    ) -> None:
        """Run many commands in one process: one per line, each reported by its line number."""
        from cxdesk.cli.main import cli_command

        lines = read_lines(source)
        command = cli_command()
        failed = run_lines(command, lines, stop=stop)
        if failed:
            raise typer.Exit(1)


def read_lines(source: str) -> list[str]:
    if source == "-":
        return sys.stdin.read().splitlines()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DeskError(_("No such file: {path}").format(path=source)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeskError(_("Cannot read {path}: {reason}").format(path=source, reason=exc)) from None


def run_lines(command: Any, lines: list[str], *, stop: bool) -> list[int]:
    """Run each line's command; the numbers of the lines that failed."""
    from cxdesk.cli.identity import proofs_kept
    from cxdesk.cli.main import refusal_line

    failed: list[int] = []
    ran = 0
    with proofs_kept():
        for number, line in enumerate(lines, start=1):
            try:
                words = words_of(line)
            except DeskError as exc:
                ran += 1
                report(number, refusal_line(exc) or "")
                failed.append(number)
            else:
                if not words:
                    continue
                ran += 1
                if run_line(command, number, words) != 0:
                    failed.append(number)
            if failed and stop:
                break
    use_cli_language()  # the last line's user's language is not the terminal's
    summary = ngettext("batch: {n} command", "batch: {n} commands", ran).format(n=ran)
    if failed:
        lines_failed = ", ".join(str(number) for number in failed[:10])
        summary += "; " + ngettext(
            "{n} failed (line {lines})", "{n} failed (lines {lines})", len(failed)
        ).format(n=len(failed), lines=lines_failed + (", …" if len(failed) > 10 else ""))
        if stop:
            summary += "; " + _("stopped there")
    else:
        summary += "; " + _("all done")
    err_console.print(summary, soft_wrap=True)
    return failed


def words_of(line: str) -> list[str]:
    if len(line) > MAX_LINE:
        raise DeskError(_("the line is longer than {n} characters").format(n=MAX_LINE))
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:  # an unclosed quote, a trailing backslash
        raise DeskError(
            _("cannot split the line into words: {reason}").format(reason=exc)
        ) from None
    if words[:1] == ["cxdesk"]:
        words = words[1:]
    if words and words[0] in NOT_IN_A_BATCH:
        raise DeskError(
            _("`{command}` cannot run in a batch: {why}").format(
                command=words[0], why=_(NOT_IN_A_BATCH[words[0]])
            )
        )
    return words


def run_line(command: Any, number: int, words: list[str]) -> int:
    """One line's command; its exit code (0 done). Its refusal is reported with the line."""
    from cxdesk.cli.main import refusal_line

    use_cli_language()  # the terminal's, until this line's command proves who acts
    try:
        result = command.main(args=words, prog_name="cxdesk", standalone_mode=False)
    except TyperException as exc:  # a usage mistake: unknown command or option (Click's)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        report(number, error_line(message))
        return exc.exit_code or 2
    except typer.Abort:
        report(number, error_line(_("aborted")))
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        line = refusal_line(exc)
        if line is None:
            raise
        report(number, line)
        return 1
    return result if isinstance(result, int) else 0


def report(number: int, line: str) -> None:
    err_console.print(_("line {number}: {error}").format(number=number, error=line), soft_wrap=True)
