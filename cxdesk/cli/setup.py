"""Setting a desk up: ``init``, ``demo``, ``seed``, ``db upgrade``, and ``run``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cxdesk.cli.common import (
    ADMIN_AS_OPTION,
    console,
    desk_engine,
    print_table,
    proven_admin,
    raw_engine,
    read_password,
)
from cxdesk.cli.identity import desk_has_users
from cxdesk.demo import DEMO_PASSWORD, build_demo, demo_logins
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.locations import desk_private_paths, make_owner_only
from cxdesk.seed import apply_seed, read_seed
from cxdesk.store.db import is_sqlite, transaction
from cxdesk.store.directory import add_user, ensure_builtin_statuses
from cxdesk.store.migrate import current_revision, head_revision, upgrade
from cxdesk.store.models import Role

db_app = typer.Typer(help="The desk's database.", no_args_is_help=True)


def _first_admin(
    username: str | None, name: str | None, email: str | None
) -> tuple[str, str, str, str] | None:
    """(username, name, email, password) of a new desk's first admin, from the options or
    asked for at a terminal; None when neither is there."""
    if username is None:
        if not sys.stdin.isatty():
            return None
        username = typer.prompt("The first admin's username")
    if name is None:
        name = typer.prompt("Their name") if sys.stdin.isatty() else username
    if email is None:
        if not sys.stdin.isatty():
            raise DeskError("--admin needs --email (the first admin's address)")
        email = typer.prompt("Their email")
    return username, name, email, read_password(f"Password for {username}")


def init(
    admin: str | None = typer.Option(
        None, "--admin", help="On a desk with no users: the first admin's username."
    ),
    name: str | None = typer.Option(None, "--name", help="The first admin's name."),
    email: str | None = typer.Option(None, "--email", help="The first admin's email."),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Create (or upgrade) the desk database and make its files owner-only; on a desk with no
    users, add its first admin (asked for at a terminal; password from CXDESK_PASSWORD or
    asked for)."""
    engine = raw_engine()
    has_users = desk_has_users(engine)
    if has_users and admin is not None:
        raise DeskError("This desk has users already: an admin adds more with `cxdesk user add`")
    if has_users and current_revision(engine) != head_revision():
        proven_admin(as_user, engine)  # the upgrade changes the desk
    first = None if has_users else _first_admin(admin, name, email)
    database = engine.url.database if is_sqlite(engine) else None
    sqlite_file = Path(database).expanduser() if database and database != ":memory:" else None
    for path, mode in make_owner_only(desk_private_paths(sqlite_file)):
        console.print(f"Made owner-only (was {mode:04o}): {path}")
    upgrade(engine)
    with transaction(engine) as session:
        ensure_builtin_statuses(session)
        if first is not None:
            username, full_name, address, password = first
            add_user(session, actor=None, username=username, name=full_name, email=address,
                     password=password, role=Role.admin)  # fmt: skip
    console.print(f"Desk ready at {engine.url.render_as_string(hide_password=True)}")
    if first is not None:
        console.print(f"First admin {first[0]} added: `cxdesk login {first[0]}` to work as them.")
    elif not has_users:
        console.print(
            "No users yet: `cxdesk init --admin USERNAME --name NAME --email EMAIL` adds the "
            "first admin (password from CXDESK_PASSWORD, or asked for).",
            soft_wrap=True,
        )


def demo(
    reset: bool = typer.Option(False, "--reset", help="Wipe the database and start over."),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Set up the Ask the Experts demo desk and print its logins."""
    engine = raw_engine()
    if reset:
        proven_admin(as_user, engine)  # wiping a desk with users takes one of its admins
    created = build_demo(engine, reset=reset)
    if not created:
        console.print(
            "A desk is already set up here; kept it (use --reset to start over). "
            "Log in with `cxdesk` (the desk) or `cxdesk login USERNAME` (commands).",
            soft_wrap=True,
        )
        return
    console.print("Demo desk ready: Ask the Experts, 9 product teams, 10 waiting check-ins.")
    print_table("Logins", ["username", "name", "role", "password"], demo_logins(engine))
    console.print(
        f"Log in: `cxdesk` opens the desk (e.g. maya, password {DEMO_PASSWORD}); for commands, "
        "`cxdesk login maya` once (or --as USER, asked for the password each time).",
        soft_wrap=True,
    )


def seed(
    file: Path = typer.Argument(..., help="Seed TOML file."),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Apply a seed file (teams, users, queues, statuses, surveys, workflows...)."""
    data, text = read_seed(file)  # a file refused changes nothing, not even the schema
    engine = raw_engine()
    proven_admin(as_user, engine)
    upgrade(engine)
    with unit_of_work(engine) as session:
        report = apply_seed(session, data, text, path=str(file))
    if report.created:
        created = ", ".join(f"{n} {section}" for section, n in sorted(report.created.items()))
        console.print(f"Seed applied: created {created}.")
    else:
        console.print("Seed applied: nothing to change.")


@db_app.command("upgrade")
def db_upgrade(as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Upgrade the database schema to this version of cxdesk, keeping every row."""
    engine = raw_engine()
    proven_admin(as_user, engine)
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
