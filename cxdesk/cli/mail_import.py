"""``cxdesk mail import``: RFC 5322 messages from files or stdin (an MTA's pipe).

Each file, or standard input (``-`` or no argument), is one message, handed to
``cxdesk.engine.inbound.mailgate.receive_email``: one line per message says what became of it
(``EXP-12: added to the conversation``, ``duplicate: already handled``), one ``Error:`` line
per message not handled. Exit status, as an MTA reads it (sysexits): 0 when every message was
handled (a duplicate was, earlier); 1 when one was refused (not mail, no sender, unreadable
file: the MTA bounces it); 75 (``EX_TEMPFAIL``) when the desk could not take one (its database
unreachable or not set up, or a bug: customer mail is never bounced for the desk's fault):
the MTA keeps the message and tries again, and a message handled before the failure is
recognised as a duplicate then.

Who may run it: like ``cxdesk worker``, it is a system action, not a person's: it needs no
login (an MTA's pipe has none), only access to the desk database (its settings and, for
PostgreSQL, the URL in ``CXDESK_DATABASE_URL``). The mail itself is what is checked: it joins
a ticket only through our signed Message-IDs or its customer's own address.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from cxdesk.cli.common import console, desk_engine, err_console, error_line
from cxdesk.cli.mail import mail_app
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _
from cxdesk.store.user_files import read_regular_file
from cxdesk.text import printable

EX_TEMPFAIL = 75
"""sysexits.h: a temporary failure; Postfix, Exim and sendmail defer the message and retry."""
FILES_ARGUMENT = typer.Argument(
    None,
    metavar="FILE|-",
    help=N_("Files of one RFC 5322 message each; '-' or none: one message on standard input."),
    show_default=False,
)


def _error(line: str) -> None:
    err_console.print(printable(error_line(line), lines=False), soft_wrap=True)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read(name: str, limit: int) -> bytes:
    if name != "-":
        return read_regular_file(Path(name), limit=limit, what="message")
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise DeskError(
            _("standard input: the message is larger than {limit} KB").format(limit=limit // 1024)
        )
    return data


@mail_app.command("import")
def import_mail(files: list[str] | None = FILES_ARGUMENT) -> None:
    """Hand customer email to the desk: each message lands on its ticket or opens one.

    For an MTA: pipe each message in, e.g. a Postfix alias "|cxdesk mail import -". Needs
    access to the desk database only (no login): it is a system action, like the worker.
    Exit 0: all handled; 1: a message refused; 75: the desk was unreachable (try again)."""
    from cxdesk.engine.inbound.mailgate import MAX_MESSAGE_BYTES, RefusedMail, receive_email

    refused = deferred = 0
    try:
        engine = desk_engine()
    except (DeskError, SQLAlchemyError, OSError) as exc:  # OSError: its file, unreadable
        _error(f"the desk cannot take mail now (the MTA will try again): {exc}")
        raise typer.Exit(EX_TEMPFAIL) from None
    for name in files or ["-"]:
        shown = "standard input" if name == "-" else name
        try:
            raw = _read(name, MAX_MESSAGE_BYTES)
        except DeskError as exc:
            refused += 1
            _error(str(exc))
            continue
        try:
            received = receive_email(engine, raw)
        except RefusedMail as exc:
            refused += 1
            _error(f"{shown}: {exc}")
            continue
        except (DeskError, SQLAlchemyError, OSError) as exc:
            deferred += 1
            _error(f"{shown}: not taken, try again later: {_first_line(exc)}")
            continue
        except Exception as exc:  # noqa: BLE001  (a bug: keep the mail for a retry, not bounce it)
            deferred += 1
            kind = type(exc).__name__
            _error(f"{shown}: not taken, try again later: unexpected {kind}: {_first_line(exc)}")
            continue
        console.print(printable(received.detail, lines=False), soft_wrap=True)
    if deferred:
        raise typer.Exit(EX_TEMPFAIL)
    if refused:
        raise typer.Exit(1)
