"""The lazy command tree (issue 18, item 2): ``cxdesk --help`` and a group's help answer from
the index (``cxdesk/cli/commands.json``) without importing any command's module, the index is
what the real commands say, every help of the lazy tree is the real tree's (in English and in
Japanese), and a command imports only what it uses."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer import _click as click
from typer.core import TyperGroup

from cxdesk.cli.help_text import translated_command
from cxdesk.cli.main import cli_command, full_app
from cxdesk.i18n import current_language, use_language
from tests.cli_helpers import Cli

ROOT = Path(__file__).resolve().parent.parent


def index_tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "command_index", ROOT / "scripts" / "command_index.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_index_is_what_the_commands_say() -> None:
    tool = index_tool()
    assert tool.INDEX.read_text(encoding="utf-8") == tool.render(), (
        "cxdesk/cli/commands.json is out of date: run scripts/command_index.py write"
    )


def paths(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command's words, the root's ``()`` first."""
    yield path
    if isinstance(command, TyperGroup):
        for name, subcommand in command.commands.items():
            yield from paths(subcommand, (*path, name))


def help_text(command: click.Command, words: tuple[str, ...]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        command.main(args=[*words, "--help"], prog_name="cxdesk", standalone_mode=False)
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_help_of_the_lazy_tree_is_the_real_one(language: str) -> None:
    saved = current_language()
    use_language(language)
    try:
        real = translated_command(typer.main.get_command(full_app()))
        every = list(paths(real))
        assert len(every) > 60
        for words in every:
            lazy = cli_command()  # a fresh tree each time: nothing loaded by an earlier help
            assert help_text(lazy, words) == help_text(real, words), " ".join(words)
    finally:
        use_language(saved)


NEVER_FOR_HELP = [
    "sqlalchemy", "sqlmodel", "alembic", "psycopg", "twilio", "requests", "openpyxl", "rich",
    "babel", "textual", "argon2", "phonenumbers", "email_validator", "jinja2", "cxdesk.store",
    "cxdesk.engine", "cxdesk.cli.common", "cxdesk.cli.tickets",
]  # fmt: skip
NEVER_FOR_A_READ = [
    "alembic", "psycopg", "twilio", "requests", "openpyxl", "rich", "babel", "textual",
    "jinja2", "aiosmtplib", "imapclient", "waitress", "argon2", "phonenumbers",
    "email_validator", "cxdesk.engine.dispatch", "cxdesk.store.pull", "cxdesk.cli.views",
    "cxdesk.cli.setup",
]  # fmt: skip


def loaded_by(args: list[str], modules: list[str], env: dict[str, str] | None = None) -> list[str]:
    """Which of ``modules`` (or their submodules) ``cxdesk ARGS`` imported, in a fresh process."""
    code = (
        "import sys\n"
        f"sys.argv = ['cxdesk', *{args!r}]\n"
        "from cxdesk.launch import main\n"
        "code = 0\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print('exit', code)\n"
        f"print('loaded:', *(m for m in {modules!r} "
        "if any(k == m or k.startswith(m + '.') for k in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    exit_line, loaded = (done.stdout.splitlines() or ["", ""])[-2:]
    assert exit_line in ("exit 0", "exit 2"), done.stdout + done.stderr  # 2: the usage error
    assert loaded.startswith("loaded:"), done.stdout + done.stderr
    return loaded.split()[1:]


@pytest.mark.parametrize("args", [["--help"], ["ticket", "--help"], ["tickets", "--help"]])
def test_help_loads_no_command(args: list[str]) -> None:
    assert loaded_by(args, NEVER_FOR_HELP) == []


# A usage error speaks the logged-in user's language (cxdesk.cli.usage_errors), so it reads the
# desk's logins (SQLAlchemy, the store): a mistake's price, never --help's. No command loads.
NEVER_FOR_A_USAGE_ERROR = [
    module for module in NEVER_FOR_HELP
    if module not in ("sqlalchemy", "sqlmodel", "cxdesk.store", "cxdesk.engine",
                      "cxdesk.cli.common")
]  # fmt: skip


def test_a_usage_error_loads_no_command() -> None:
    assert loaded_by(["tickts", "list"], NEVER_FOR_A_USAGE_ERROR) == []


NEVER_FOR_A_CHECKIN = [
    "alembic", "psycopg", "twilio", "requests", "openpyxl", "rich", "babel", "textual",
    "jinja2", "aiosmtplib", "imapclient", "waitress", "argon2", "cxdesk.cli.views",
]  # fmt: skip
CHECKIN = [
    "checkin", "--as", "vera", "--answer", "first_name=Ada", "--answer", "last_name=Lovelace",
    "--answer", "email=ada@example.com", "--answer", "product=360",
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "never"),
    [
        (["tickets", "list", "--json", "--limit", "2", "--as", "maya"], NEVER_FOR_A_READ),
        (CHECKIN, NEVER_FOR_A_CHECKIN),
    ],
    ids=["tickets_list_json", "checkin"],
)
def test_a_command_loads_only_what_it_uses(cli: Cli, args: list[str], never: list[str]) -> None:
    """Logged in (``cxdesk login``: no password to check), on the ``cli`` fixture's desk;
    on PostgreSQL (``db_url`` runs both) psycopg is what it uses."""
    assert cli("demo").exit_code == 0
    for user in ("maya", "vera"):
        assert cli("login", user).exit_code == 0
    env = {k: v for k, v in os.environ.items() if k not in ("CXDESK_LOGIN_PASSWORD", "CXDESK_USER")}
    expected = [] if env["CXDESK_DATABASE_URL"].startswith("sqlite") else ["psycopg"]
    assert loaded_by(args, never, env=env) == expected
