"""``cxdesk`` / ``cxdesk run``: the login screen paints before the desk's database opens, and a
desk that cannot open ends the app with the CLI's one-line error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cxdesk.launch import desk_arguments, needs_terminal
from tests.cli_helpers import TEST_PASSWORD, console_script


@pytest.mark.parametrize(
    ("args", "options"),
    [
        ([], {"user": None}),
        (["run"], {"user": None}),
        (["run", "--user", "maya"], {"user": "maya"}),
        (["run", "--user=maya"], {"user": "maya"}),
        (["--user=maya"], {"user": "maya"}),  # ``cxdesk --user NAME`` is ``cxdesk run``'s
        (["--user", "maya"], {"user": "maya"}),
        (["--help"], None),
        (["--user", "maya", "queue"], None),
        (["run", "--help"], None),  # the Typer CLI answers these
        (["queue", "list"], None),
        (["run", "--user"], None),
        (["--user", "--help"], None),  # the CLI's help, not a desk for a user "--help"
    ],
)
def test_which_command_lines_open_the_desk(args: list[str], options: object) -> None:
    assert desk_arguments(args) == options


DRIVE = """
import sys
from cxdesk.launch import open_desk
from cxdesk.screens.login import LoginScreen

async def log_in(pilot):
    app = pilot.app
    for _ in range(400):  # the desk opens behind the login screen; type as soon as it shows
        if isinstance(app.screen, LoginScreen):
            break
        await pilot.pause(0.01)
    await pilot.press(*sys.argv[2], "enter")
    for _ in range(1000):
        if app.return_code is not None:  # the app ended itself (the desk did not open)
            return
        if app.user is not None:
            print("logged in as", app.user.username, type(app.screen).__name__, flush=True)
            screens = sorted(m for m in sys.modules if m.startswith("cxdesk.screens."))
            print("screens loaded:", *screens, flush=True)
            app.exit()
            return
        await pilot.pause(0.01)
    app.exit(return_code=3)

sys.exit(open_desk(sys.argv[1] or None, headless=True, size=(100, 32), auto_pilot=log_in))
"""


def run_desk(user: str, env_url: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "CXDESK_DATABASE_URL": env_url, "CXDESK_DELIVER": "0"}
    return subprocess.run(
        [sys.executable, "-c", DRIVE, user, TEST_PASSWORD],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_desk_opens_behind_the_login_screen_and_logs_in(engine: object, db_url: str) -> None:
    from tests.desk import build_small_desk

    build_small_desk(engine)  # type: ignore[arg-type]
    done = run_desk("maya", db_url)
    assert done.returncode == 0, done.stderr
    assert "logged in as maya QueuesScreen" in done.stdout
    # Logging in imports the home screen alone, not every screen the palette could open.
    others = {"kanban", "tickets", "stream", "history", "board", "checkin", "new_ticket"}
    loaded = {line for line in done.stdout.splitlines() if line.startswith("screens loaded:")}
    assert loaded and not {f"cxdesk.screens.{name}" for name in others} & set(loaded.pop().split())


def test_a_desk_that_cannot_open_ends_the_app_with_one_line(tmp_path: object) -> None:
    done = run_desk("maya", f"sqlite:///{tmp_path}/nothing-here.db")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "no database yet: run `cxdesk init`" in done.stdout + done.stderr


def test_piped_the_desk_says_it_needs_a_terminal() -> None:
    done = subprocess.run(
        [str(console_script())], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == needs_terminal()


HEAVY = [
    "sqlalchemy", "sqlmodel", "alembic", "psycopg", "typer", "twilio", "requests", "openpyxl",
    "babel", "argon2", "phonenumbers", "email_validator", "jinja2", "aiosmtplib", "imapclient",
]  # fmt: skip


def test_the_login_screen_imports_stay_lean() -> None:
    """What the first paint loads (cxdesk.launch, the App, the login screen, the translations):
    none of the desk's heavy libraries; they load behind the login screen, in a worker."""
    code = (
        "import sys, cxdesk.launch, cxdesk.app, cxdesk.screens.login, cxdesk.i18n\n"
        "cxdesk.i18n.use_language('ja'); cxdesk.i18n._('Log in to the desk')\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.split() == []
