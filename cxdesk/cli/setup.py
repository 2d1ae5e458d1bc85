"""Setting a desk up: ``init``, ``demo``, ``seed``, ``db upgrade``, and ``run``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cxdesk.cli.common import console, desk_engine, print_table, raw_engine
from cxdesk.demo import build_demo, demo_logins
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.seed import apply_seed, read_seed
from cxdesk.store.db import transaction
from cxdesk.store.directory import ensure_builtin_statuses
from cxdesk.store.migrate import current_revision, head_revision, upgrade

db_app = typer.Typer(help="The desk's database.", no_args_is_help=True)


def init() -> None:
    """Create (or upgrade) the desk database with the built-in statuses."""
    engine = raw_engine()
    upgrade(engine)
    with transaction(engine) as session:
        ensure_builtin_statuses(session)
    console.print(f"Desk ready at {engine.url.render_as_string(hide_password=True)}")


def demo(
    reset: bool = typer.Option(False, "--reset", help="Wipe the database and start over."),
) -> None:
    """Set up the Ask the Experts demo desk and print its logins."""
    engine = raw_engine()
    created = build_demo(engine, reset=reset)
    if created:
        console.print("Demo desk ready: Ask the Experts, 9 product teams, 10 waiting check-ins.")
    else:
        console.print("A desk is already set up here; kept it (use --reset to start over).")
    print_table("Logins", ["username", "name", "role", "password"], demo_logins(engine))


def seed(file: Path = typer.Argument(..., help="Seed TOML file.")) -> None:
    """Apply a seed file (teams, users, queues, statuses, surveys, workflows...)."""
    data, text = read_seed(file)  # a file refused changes nothing, not even the schema
    engine = raw_engine()
    upgrade(engine)
    with unit_of_work(engine) as session:
        report = apply_seed(session, data, text, path=str(file))
    if report.created:
        created = ", ".join(f"{n} {section}" for section, n in sorted(report.created.items()))
        console.print(f"Seed applied: created {created}.")
    else:
        console.print("Seed applied: nothing to change.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database schema to this version of cxdesk, keeping every row."""
    engine = raw_engine()
    before = current_revision(engine)
    upgrade(engine)
    after = head_revision()
    if before == after:
        console.print(f"Database already at revision {after}.")
    else:
        console.print(f"Database upgraded from {before or 'empty'} to {after}.")


def run(
    user: str | None = typer.Option(None, "--user", help="Preselect this username at login."),
) -> None:
    """Open the desk in the terminal (log in, then your role's home screen)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DeskError(
            "the desk needs a terminal (input or output is redirected); "
            "see `cxdesk --help` for commands that work in scripts"
        )
    from cxdesk.app import create_app  # Textual loads only when the desk opens

    create_app(desk_engine(), user=user).run()


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(demo)
    app.command()(seed)
    app.command()(run)
    app.add_typer(db_app, name="db")
