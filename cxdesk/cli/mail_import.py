"""``cxdesk mail import``: RFC 5322 messages from files or stdin (an MTA's pipe).

Each file, or standard input (``-`` or no argument), is one message, handed to
``cxdesk.engine.inbound.mailgate.receive_email``: one line per message says what became of it
(``EXP-12: added to the conversation``, ``duplicate: already handled``), one ``Error:`` line
per message refused. Exit 0 when every message was handled (a duplicate was, earlier), else 1.

Who may run it: like ``cxdesk worker``, it is a system action, not a person's: it needs no
login (an MTA's pipe has none), only access to the desk database (its settings and, for
PostgreSQL, the URL and password in ``CXDESK_DATABASE_URL``). The mail itself is what is
checked: it joins a ticket only through our signed Message-IDs or its customer's address.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cxdesk.cli.common import console, desk_engine, err_console
from cxdesk.cli.mail import mail_app
from cxdesk.errors import DeskError
from cxdesk.store.user_files import read_regular_file
from cxdesk.text import printable

FILES_ARGUMENT = typer.Argument(
    None,
    metavar="[FILE...|-]",
    help="Files of one RFC 5322 message each; '-' or none: one message on standard input.",
    show_default=False,
)


def _read_stdin(limit: int) -> bytes:
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise DeskError(f"standard input: the message is larger than {limit // 1024} KB")
    return data


@mail_app.command("import")
def import_mail(files: list[str] | None = FILES_ARGUMENT) -> None:
    """Hand customer email to the desk: each message lands on its ticket or opens one.

    For an MTA: pipe each message in, e.g. a Postfix alias "|cxdesk mail import -". Needs
    access to the desk database only (no login): it is a system action, like the worker."""
    from cxdesk.engine.inbound.mailgate import MAX_MESSAGE_BYTES, RefusedMail, receive_email

    engine = desk_engine()
    failed = 0
    for name in files or ["-"]:
        shown = "standard input" if name == "-" else printable(name, lines=False)
        try:
            if name == "-":
                raw = _read_stdin(MAX_MESSAGE_BYTES)
            else:
                raw = read_regular_file(Path(name), limit=MAX_MESSAGE_BYTES, what="message")
        except DeskError as exc:
            failed += 1
            err_console.print(printable(f"Error: {exc}", lines=False), soft_wrap=True)
            continue
        try:
            received = receive_email(engine, raw)
        except (RefusedMail, DeskError) as exc:
            failed += 1
            err_console.print(printable(f"Error: {shown}: {exc}", lines=False), soft_wrap=True)
            continue
        console.print(printable(received.detail, lines=False), soft_wrap=True)
    if failed:
        raise typer.Exit(1)
