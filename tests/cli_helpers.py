"""Running the ``cxdesk`` CLI inside a test, the way a user's shell runs it, and reading the desk.

``CliRunner`` on the Typer app would bypass ``cxdesk.cli.main.main()``, which is where a
``DeskError`` becomes one ``Error: ...`` line and exit code 1. ``run_main`` calls ``main()``
itself with ``sys.argv`` patched and returns what the user would have seen. An exception that
escapes ``main()`` is rendered as the interpreter would render it (a traceback on stderr, exit
code 1), so a test asserting ``"Traceback" not in result.output`` fails with the traceback in
its message instead of erroring somewhere inside pytest.

``run_console_script`` runs the installed ``cxdesk`` script in a subprocess, for the few
end-to-end checks that must see a real process (slow: ~2 s of imports each).
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import SQLModel

from cxdesk.cli.main import main
from cxdesk.demo import DEMO_PASSWORD
from cxdesk.i18n import current_language, use_language

TEST_PASSWORD = DEMO_PASSWORD
"""Every user's password on the test desks (the demo desk, ``tests/desk.py``'s): the ``cli``
fixture proves ``--as USER`` with it (``CXDESK_LOGIN_PASSWORD``)."""


def prove_as_a_script(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give commands proof of identity the way a script does (``cxdesk.cli.identity``):
    ``CXDESK_LOGIN_PASSWORD`` is ``TEST_PASSWORD`` and ``CXDESK_USER`` is ``admin``, so
    ``--as USER`` acts as USER and a command without ``--as`` as admin."""
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
    monkeypatch.setenv("CXDESK_USER", "admin")


@dataclass(frozen=True)
class CliResult:
    """What one ``cxdesk ...`` invocation printed and how it exited."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def error_lines(self) -> list[str]:
        """The non-empty lines on stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __str__(self) -> str:  # shown by pytest when an assertion on a result fails
        return (
            f"cxdesk {' '.join(self.args)} -> exit {self.exit_code}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


Cli = Callable[..., CliResult]


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # sys.exit("message") prints it and exits 1
    return 1


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """``cxdesk ARGS...`` in this process, through ``main()``; stdout/stderr captured."""
    capsys.readouterr()  # drop anything printed before this command
    saved_argv, saved_language = sys.argv, current_language()
    sys.argv = ["cxdesk", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        traceback.print_exc()  # what the interpreter would show the user
        code = 1
    finally:
        sys.argv = saved_argv
        use_language(saved_language)  # main() set the CLI's; the rest of the test keeps its own
    out, err = capsys.readouterr()
    return CliResult(args=args, exit_code=code, stdout=out, stderr=err)


def console_script() -> Path:
    """The ``cxdesk`` script installed next to this interpreter."""
    script = Path(sys.executable).with_name("cxdesk")
    assert script.exists(), f"console script not installed at {script}"
    return script


def run_console_script(*args: str, timeout: float = 120) -> CliResult:
    """``cxdesk ARGS...`` as a real process, with this test's environment."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [str(console_script()), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=timeout,
    )
    return CliResult(args=args, exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)


def assert_one_error_line(result: CliResult, *fragments: str) -> str:
    """A user mistake: exit 1, nothing on stdout, one ``Error: ...`` line naming ``fragments``."""
    assert "Traceback" not in result.output, str(result)
    assert result.exit_code == 1, str(result)
    assert result.stdout == "", str(result)
    assert len(result.error_lines) == 1, str(result)
    line = result.error_lines[0]
    assert line.startswith("Error: "), str(result)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


# -- reading the desk's database ---------------------------------------------------------------


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per table, for "nothing was written" checks; not ``ticket_viewer``, which an open
    ticket screen writes every second whatever is done in it (``store.ticket_presence``)."""
    with engine.connect() as connection:
        return {
            name: connection.scalar(select(func.count()).select_from(table)) or 0
            for name, table in SQLModel.metadata.tables.items()
            if name != "ticket_viewer"
        }


def dump_tables(engine: Engine, names: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the named tables, in primary-key order, for "nothing changed" checks."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name in names:
            table = SQLModel.metadata.tables[name]
            rows = connection.execute(select(table).order_by(*table.primary_key.columns))
            dump[name] = [tuple(row) for row in rows]
    return dump
