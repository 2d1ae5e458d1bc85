"""``cxdesk mail fetch``: customer email from an IMAP mailbox, and the same fetching run by
``cxdesk worker`` when IMAP is configured (``worker_fetcher``, ``fetch_loop``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import typer
from sqlalchemy import Engine

from cxdesk.cli.common import console, desk_engine, err_console, error_line
from cxdesk.cli.delivery import run_until_signalled, say_recovery, say_trouble
from cxdesk.cli.mail import mail_app
from cxdesk.config import Settings, load_settings
from cxdesk.engine.inbound.imap import (
    FetchReport,
    ImapSettings,
    MailboxError,
    MailboxFetcher,
)
from cxdesk.engine.inbound.mailgate import receive_email
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _
from cxdesk.text import printable


@mail_app.command("fetch")
def mail_fetch(
    once: bool = typer.Option(
        False, "--once", help=N_("Fetch what is in the folder now, then exit.")
    ),
) -> None:
    """Fetch customer email from the IMAP mailbox ([imap] settings, the password from
    CXDESK_IMAP_PASSWORD) into the desk, each message once; it is marked seen once handled.

    --once exits 0 when every message was handled, else 1 with a line per refused one.
    Without it, waits for new mail (IDLE, else every [imap] poll seconds) until Ctrl+C or
    SIGTERM, through mailbox and database outages (one line when one starts, one when it
    ends)."""
    settings = ImapSettings.of(load_settings())
    settings.check()
    fetcher = MailboxFetcher(settings, partial(receive_email, desk_engine()))
    # The first pass, even without --once: a mistake (a wrong host, password or folder) is one
    # line and exit 1 here, where a later outage is waited out.
    report = fetcher.fetch_once()
    say_report(report, folder=settings.folder)
    if once:
        if report.refused:
            raise typer.Exit(1)
        return
    console.print(
        _("Fetching {folder} from {address}; Ctrl+C stops it.").format(
            folder=settings.folder, address=settings.address
        ),
        soft_wrap=True,
    )
    run_until_signalled(
        fetch_loop(fetcher),
        stopping="Stopping after the message being handled (Ctrl+C again: at once)...",
    )
    console.print(_("Fetching stopped."))


def say_report(report: FetchReport, *, folder: str) -> None:
    """A line per message handled (stdout) and per message refused (stderr), then a count."""
    for who, received in report.handled:
        console.print(printable(f"{who}: {received.detail}", lines=False), soft_wrap=True)
    for line in report.refused:
        err_console.print(_("Refused: {line}").format(line=line), soft_wrap=True)
    for line in report.set_aside:
        err_console.print(error_line(line), soft_wrap=True)
    console.print(report.line(folder))


def worker_fetcher(engine: Engine, settings: Settings) -> MailboxFetcher | None:
    """The fetcher ``cxdesk worker`` runs beside delivery: None when no IMAP host is set, or
    (with a note) when the username or password is missing - delivery goes on either way."""
    imap = ImapSettings.of(settings)
    if not imap.configured:
        return None
    try:
        imap.check()
    except DeskError as error:
        err_console.print(
            _("Note: {error}; mail is not fetched").format(error=error), soft_wrap=True
        )
        return None
    return MailboxFetcher(imap, partial(receive_email, engine))


def fetch_once(fetcher: MailboxFetcher) -> bool:
    """``cxdesk worker --once``'s fetch: False (after one ``Error:`` line) when the mailbox
    could not be read or a message was refused; delivery runs whatever this says."""
    try:
        report = fetcher.fetch_once()
    except MailboxError as error:
        err_console.print(error_line(str(error)), soft_wrap=True)
        return False
    say_report(report, folder=fetcher.settings.folder)
    return not report.refused


def fetch_loop(fetcher: MailboxFetcher) -> Callable[[threading.Event], None]:
    """``fetcher.run_forever`` saying what it fetches and its outages on the terminal."""

    def say_pass(report: FetchReport) -> None:
        if report.handled or report.refused or report.set_aside:
            say_report(report, folder=fetcher.settings.folder)

    def loop(stop: threading.Event) -> None:
        fetcher.run_forever(stop, on_trouble=say_trouble, on_recovery=say_recovery,
                            after_pass=say_pass)  # fmt: skip

    return loop
