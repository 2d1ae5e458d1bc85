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
from cxdesk.i18n import N_, _
from cxdesk.locations import desk_private_paths, make_owner_only
from cxdesk.seed import apply_seed, read_seed
from cxdesk.store.db import is_sqlite, transaction
from cxdesk.store.directory import add_user, ensure_builtin_statuses
from cxdesk.store.migrate import current_revision, head_revision, upgrade
from cxdesk.store.models import Role

db_app = typer.Typer(help=N_("The desk's database."), no_args_is_help=True)


def _first_admin(
    username: str | None, name: str | None, email: str | None
) -> tuple[str, str, str, str] | None:
    """(username, name, email, password) of a new desk's first admin, from the options or
    asked for at a terminal; None when neither is there."""
    if username is None:
        if not sys.stdin.isatty():
            return None
        username = typer.prompt(_("The first admin's username"))
    if name is None:
        name = typer.prompt(_("Their name")) if sys.stdin.isatty() else username
    if email is None:
        if not sys.stdin.isatty():
            raise DeskError(_("--admin needs --email (the first admin's address)"))
        email = typer.prompt(_("Their email"))
    return (
        username,
        name,
        email,
        read_password(_("Password for {username}").format(username=username)),
    )


def init(
    admin: str | None = typer.Option(
        None, "--admin", help=N_("On a desk with no users: the first admin's username.")
    ),
    name: str | None = typer.Option(None, "--name", help=N_("The first admin's name.")),
    email: str | None = typer.Option(None, "--email", help=N_("The first admin's email.")),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Create (or upgrade) the desk database and make its files owner-only; on a desk with no
    users, add its first admin (asked for at a terminal; password from CXDESK_PASSWORD or
    asked for)."""
    engine = raw_engine()
    has_users = desk_has_users(engine)
    if has_users and admin is not None:
        raise DeskError(_("This desk has users already: an admin adds more with `cxdesk user add`"))
    if has_users and current_revision(engine) != head_revision():
        proven_admin(as_user, engine)  # the upgrade changes the desk
    first = None if has_users else _first_admin(admin, name, email)
    database = engine.url.database if is_sqlite(engine) else None
    sqlite_file = Path(database).expanduser() if database and database != ":memory:" else None
    for path, mode in make_owner_only(desk_private_paths(sqlite_file)):
        console.print(_("Made owner-only (was {mode:04o}): {path}").format(mode=mode, path=path))
    upgrade(engine)
    with transaction(engine) as session:
        ensure_builtin_statuses(session)
        if first is not None:
            username, full_name, address, password = first
            add_user(session, actor=None, username=username, name=full_name, email=address,
                     password=password, role=Role.admin)  # fmt: skip
    url = engine.url.render_as_string(hide_password=True)
    console.print(_("Desk ready at {url}").format(url=url))
    if first is not None:
        said = _("First admin {username} added: `cxdesk login {username}` to work as them.")
        console.print(said.format(username=first[0]))
    elif not has_users:
        console.print(
            _(
                "No users yet: `cxdesk init --admin USERNAME --name NAME --email EMAIL` adds the "
                "first admin (password from CXDESK_PASSWORD, or asked for)."
            ),
            soft_wrap=True,
        )


def demo(
    reset: bool = typer.Option(False, "--reset", help=N_("Wipe the database and start over.")),
    as_user: str | None = ADMIN_AS_OPTION,
) -> None:
    """Set up the Ask the Experts demo desk and print its logins."""
    engine = raw_engine()
    if reset:
        proven_admin(as_user, engine)  # wiping a desk with users takes one of its admins
    created = build_demo(engine, reset=reset)
    if not created:
        console.print(
            _(
                "A desk is already set up here; kept it (use --reset to start over). "
                "Log in with `cxdesk` (the desk) or `cxdesk login USERNAME` (commands)."
            ),
            soft_wrap=True,
        )
        return
    console.print(_("Demo desk ready: Ask the Experts, 9 product teams, 10 waiting check-ins."))
    print_table(
        N_("Logins"), [N_("username"), N_("name"), N_("role"), N_("password")], demo_logins(engine)
    )
    console.print(
        _(
            "Log in: `cxdesk` opens the desk (e.g. maya, password {password}); for commands, "
            "`cxdesk login maya` once (or --as USER, asked for the password each time)."
        ).format(password=DEMO_PASSWORD),
        soft_wrap=True,
    )


def seed(
    file: Path = typer.Argument(..., help=N_("Seed TOML file.")),
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
        console.print(_("Seed applied: created {created}.").format(created=created))
    else:
        console.print(_("Seed applied: nothing to change."))


@db_app.command("upgrade")
def db_upgrade(as_user: str | None = ADMIN_AS_OPTION) -> None:
    """Upgrade the database schema to this version of cxdesk, keeping every row."""
    engine = raw_engine()
    proven_admin(as_user, engine)
    before = current_revision(engine)
    upgrade(engine)
    after = head_revision()
    if before == after:
        console.print(_("Database already at revision {after}.").format(after=after))
    else:
        said = _("Database upgraded from {before} to {after}.")
        console.print(said.format(before=before or _("empty"), after=after))


def run(
    user: str | None = typer.Option(None, "--user", help=N_("Preselect this username at login.")),
) -> None:
    """Open the desk in the terminal (log in, then your role's home screen)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DeskError(
            _(
                "the desk needs a terminal (input or output is redirected); "
                "see `cxdesk --help` for commands that work in scripts"
            )
        )
    from cxdesk.app import create_app  # Textual loads only when the desk opens

    create_app(desk_engine(), user=user).run()


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(demo)
    app.command()(seed)
    app.command()(run)
    app.add_typer(db_app, name="db")
