"""What every command shares: the desk's engine, the acting user, output and error lines, and
the language the CLI speaks (``use_cli_language``)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from cxdesk.cli.identity import prove, prove_setup_admin
from cxdesk.config import load_settings
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, language_from_environment, use_language
from cxdesk.store.db import make_engine, read_session
from cxdesk.store.directory import get_user
from cxdesk.store.migrate import current_revision, head_revision
from cxdesk.store.models import User
from cxdesk.store.tickets import format_wait as format_wait  # shared with the TUI
from cxdesk.text import json_printable, printable

# Markup off: names and comments are shown exactly as typed, "[red]" and all; control
# characters as the escapes ``printable`` makes (stored text never drives the terminal). When
# piped, a wide console keeps table cells (emails, titles) whole for scripts and logs.
console = Console.__new__(Console)
err_console = Console.__new__(Console)


def fresh_consoles() -> None:
    """Make both consoles for the standard streams as they are now: at import, and again in
    the command server's child (``cxdesk.command_server``) once it has taken the caller's."""
    width = None if sys.stdout.isatty() else 200
    Console.__init__(console, highlight=False, markup=False, width=width)
    Console.__init__(err_console, stderr=True, highlight=False, markup=False)


fresh_consoles()


def use_cli_language() -> str:
    """Make the CLI speak the environment's language (``LANGUAGE``, ``LC_ALL``,
    ``LC_MESSAGES``, ``LANG``; else English) from now on: its help, output and errors. The one
    place the CLI's language is chosen; ``main()`` calls it before the commands are built."""
    return use_language(language_from_environment())


def error_line(message: str) -> str:
    """The one line a refusal prints: ``Error: ...`` in the CLI's language."""
    return _("Error: {message}").format(message=message)


@cache
def engine_for(url: str) -> Engine:
    """One engine (and connection pool) per database URL for the life of the process."""
    return make_engine(url)


def raw_engine() -> Engine:
    """The configured desk's engine, whatever state its schema is in."""
    return engine_for(load_settings().resolved_database_url)


def desk_engine() -> Engine:
    """The configured desk's engine; refuses a database that is not set up or too old."""
    engine = raw_engine()
    revision = current_revision(engine)
    if revision is None:
        raise DeskError(_("This desk has no database yet: run `cxdesk init` or `cxdesk demo`"))
    if revision != head_revision():
        raise DeskError(_("The desk database needs an upgrade: run `cxdesk db upgrade`"))
    return engine


AS_OPTION = typer.Option(
    None,
    "--as",
    help=N_(
        "Act as this user: logged in (cxdesk login), CXDESK_TOKEN's, or proven by password "
        "(CXDESK_LOGIN_PASSWORD, else asked for). Default: CXDESK_USER, or the one logged in."
    ),
)
ADMIN_AS_OPTION = typer.Option(
    None, "--as", help=N_("The admin acting (proven like any --as; see cxdesk login).")
)


def proven(as_user: str | None) -> str:
    """The username this command acts as, once proven (``cxdesk.cli.identity``); read
    commands call it too, since what they show is the desk's data. From here on the command
    speaks that user's language (``speak_as``)."""
    engine = desk_engine()
    user = prove(engine, as_user)
    speak_as(engine, user)
    return user.username


def proven_admin(as_user: str | None, engine: Engine | None = None) -> str | None:
    """The proven admin a set-up command acts as; None on a desk with no users yet."""
    engine = engine or desk_engine()
    user = prove_setup_admin(engine, as_user)
    speak_as(engine, user)
    return user.username if user else None


def speak_as(engine: Engine, user: User | None) -> None:
    """Speak ``user``'s language, else the environment's (``LANG``: the person at this
    terminal), else the desk's ``language`` setting; and show times in the desk's zone."""
    from cxdesk.i18n import language_code, language_from_environment, use_language
    from cxdesk.local_time import use_zone
    from cxdesk.store.directory import desk_zone
    from cxdesk.store.user_language import spoken_language

    own = language_code(user.language) if user is not None else None
    language = own or language_from_environment()
    try:
        with read_session(engine) as session:
            if language is None:
                language = spoken_language(session, None)  # the desk's
            use_zone(desk_zone(session))
    except SQLAlchemyError:  # a desk `db upgrade` is about to bring up to date: as started
        pass
    use_language(language)


def shown_at(value: object) -> str:
    """A stored time for people: in the desk's zone with its offset ("Dec 7, 2026, 1:05 PM
    +09:00"); JSON keeps ``cxdesk.local_time.iso_time``."""
    from cxdesk.local_time import shown_time

    return shown_time(value, offset=True)


def acting_user(session: Session, username: str) -> User:
    """The user a command acts as, as the transaction sees it: must still be active."""
    user = get_user(session, username)
    if not user.active:
        raise DeskError(_("User {username!r} is deactivated").format(username=username))
    return user


def setup_actor(session: Session, username: str | None) -> User | None:
    """The admin of ``proven_admin`` in this transaction; None (the desk's first set-up)."""
    return acting_user(session, username) if username else None


def read_password(prompt: str | None = None) -> str:
    """A new user's password: from CXDESK_PASSWORD, else a hidden prompt with confirmation.

    Never the acting user's (that one is CXDESK_LOGIN_PASSWORD): one variable, one meaning.
    """
    password = os.environ.get("CXDESK_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise DeskError(_("Set CXDESK_PASSWORD to the new user's password (no terminal to ask on)"))
    value: str = typer.prompt(prompt or _("Password"), hide_input=True, confirmation_prompt=True)
    return value


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table for people; ``title`` and ``columns`` are catalog text (marked ``N_`` where
    written), shown in the CLI's language."""
    table = Table(title=_(title), title_justify="left")
    for column in columns:
        table.add_column(_(column))
    for row in rows:
        table.add_row(*(Text("" if v is None else printable(str(v))) for v in row))
    console.print(table)


def report_title(report: str, by: str | None, since: str | None) -> str:
    """A report's table title: ``report`` (catalog text) grouped ``by`` and ``since``."""
    if by and since:
        said = _("{report} by {by} since {since}")
    elif by:
        said = _("{report} by {by}")
    elif since:
        said = _("{report} since {since}")
    else:
        said = "{report}"
    return said.format(report=_(report), by=by, since=since)


def padded(label: str, width: int = 16) -> str:
    """``label`` and spaces to ``width`` terminal cells (a Japanese character takes two)."""
    return label + " " * max(1, width - cell_len(label))


def print_json(value: Any) -> None:
    """JSON on stdout, unwrapped, so scripts can parse it."""
    typer.echo(json_printable(json.dumps(value, ensure_ascii=False, indent=2, default=str)))


def parse_pairs(pairs: Sequence[str], option: str) -> dict[str, str]:
    """``FIELD=VALUE`` options into a dict, refusing anything without ``=``."""
    result: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise DeskError(
                _("{option} takes FIELD=VALUE, got {pair!r}").format(option=option, pair=pair)
            )
        result[name.strip()] = value
    return result
