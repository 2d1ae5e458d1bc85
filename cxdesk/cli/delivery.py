"""``cxdesk worker`` and ``cxdesk outbox list|retry``: delivering what workflows send."""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import typer

from cxdesk.cli.common import (
    ADMIN_AS_OPTION,
    AS_OPTION,
    console,
    desk_engine,
    err_console,
    print_json,
    print_table,
    proven,
    proven_admin,
    shown_at,
)
from cxdesk.config import load_settings
from cxdesk.engine import outbox as ops
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.i18n import N_, _
from cxdesk.store.db import read_session, transaction

outbox_app = typer.Typer(
    help=N_(
        "Emails and SMS waiting, sent, failed or dead, or not sent (stale, skipped) or bounced."
    ),
    no_args_is_help=True,
)


def worker(
    once: bool = typer.Option(False, "--once", help=N_("Deliver what is due now, then exit.")),
    poll: float = typer.Option(1.0, "--poll", min=0.1, help=N_("Seconds between idle passes.")),
) -> None:
    """Dispatch events, run escalation rules, raise SLA warnings and breaches, run due
    scheduled workflows, deliver due email and SMS; with IMAP configured ([imap] host), also
    fetch customer email from the mailbox.

    Runs until Ctrl+C or SIGTERM, through database and mailbox outages (one line when one
    starts, one when it ends)."""
    from cxdesk.cli.mail_fetch import fetch_loop, fetch_once, worker_fetcher

    settings, engine = load_settings(), desk_engine()
    delivery = DeliveryWorker(engine, settings)
    if delivery.channels_note():
        err_console.print(f"Note: {delivery.channels_note()}", soft_wrap=True)
    fetcher = worker_fetcher(engine, settings)
    if once:
        fetched = fetch_once(fetcher) if fetcher is not None else True
        console.print(delivery.run_once().line())
        if not fetched:
            raise typer.Exit(1)
        return
    console.print(_("Worker running; Ctrl+C stops it."))

    def deliver(stop: threading.Event) -> None:
        delivery.run_forever(stop, poll_seconds=poll, on_trouble=say_trouble,
                             on_recovery=say_recovery)  # fmt: skip

    run_until_signalled(deliver, *([fetch_loop(fetcher)] if fetcher is not None else []))
    console.print(_("Worker stopped."))


def run_until_signalled(
    *loops: Callable[[threading.Event], None],
    stopping: str = "Stopping after the message in flight (Ctrl+C again: at once)...",
) -> None:
    """Each loop (a ``run_forever``: it returns once the event it is given is set) in a thread
    of its own until the first Ctrl+C or SIGTERM, which sets the event - the delivery worker
    then lets the message being sent finish (recorded; the batch's untried rows given back) -
    and returns once every loop has; a second one stops the process at once (the rows in
    flight then wait for their lease). A loop that escapes (a bug) stops the others and is
    raised here."""
    stop, ended = threading.Event(), threading.Event()
    done = [threading.Event() for _ in loops]
    failed: list[BaseException] = []

    def run(loop: Callable[[threading.Event], None], finished: threading.Event) -> None:
        # Only the main thread may take Ctrl+C and SIGTERM (so may the threads these start):
        # the kernel may hand a process's signal to any thread that does not block it, and
        # one taken here would leave the main thread asleep in wait() (seen with two loops).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            loop(stop)
        except BaseException as error:  # escaped the loop: a bug, shown by the main thread
            failed.append(error)
        finally:
            finished.set()
            ended.set()

    # SIGTERM (systemd, docker stop, kill) stops it as Ctrl+C does. The handlers raise in the
    # main thread, which only waits on events: setting an Event from a handler could
    # deadlock on the Event's own lock, and an interrupted Thread.join() marks a thread that
    # still runs as stopped (CPython 3.11).
    # The threads start with both signals held back: a loop that stops the process at once
    # (a test's, or a signal sent that early) would otherwise interrupt Thread.start() in
    # the main thread, outside the wait below (exit 130, seen under load). Only the loops
    # that did start are waited for.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    started: list[threading.Event] = []
    try:
        try:
            held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            try:
                for number, (loop, finished) in enumerate(zip(loops, done, strict=True)):
                    name = "cxdesk-worker" + (f"-{number}" if number else "")
                    thread = threading.Thread(
                        target=run, args=(loop, finished), name=name, daemon=True
                    )
                    thread.start()
                    started.append(finished)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
            ended.wait()
        except KeyboardInterrupt:
            err_console.print(stopping)
        stop.set()
        for finished in started:
            finished.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failed:
        raise failed[0]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


class Failure(Protocol):
    """A run of failed passes: the delivery worker's ``PassFailure``, the mail fetcher's
    ``FetchFailure``."""

    @property
    def error(self) -> Exception: ...

    @property
    def unreachable(self) -> bool:
        """Something could not be used for now (an outage), rather than a bug."""
        ...

    def line(self) -> str: ...

    def recovery_line(self) -> str: ...


def say_trouble(failure: Failure) -> None:
    """One line on stderr when passes start failing (a bug's traceback with it)."""
    err_console.print(f"{stamp()} {failure.line()}", soft_wrap=True)
    if not failure.unreachable:
        err_console.print("".join(traceback.format_exception(failure.error)), soft_wrap=True)


def say_recovery(failure: Failure) -> None:
    err_console.print(f"{stamp()} {failure.recovery_line()}", soft_wrap=True)


def stamp() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")


@outbox_app.command("list")
def outbox_list(
    status: str | None = typer.Option(
        None,
        "--status",
        help=N_("pending, sent, failed, dead, stale, skipped, bounced or cancelled."),
    ),
    limit: int = typer.Option(500, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """Messages with their status, attempts and last error (or why a stale or skipped one was
    not sent, or why a sent one bounced)."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        records = ops.outbox_to_dicts(session, ops.list_outbox(session, status=status, limit=limit))
    if as_json:
        print_json(records)
        return
    print_table(
        "Outbox",
        [
            N_("id"),
            N_("channel"),
            N_("ticket"),
            N_("to"),
            N_("subject"),
            N_("status"),
            N_("attempts"),
            N_("due"),
            N_("error / reason"),
        ],
        [
            (
                r["id"],
                r["channel"],
                r["ticket"],
                r["to"],
                r["subject"],
                r["status"],
                r["attempts"],
                shown_at(r["due_at"]),
                r["last_error"],
            )  # fmt: skip
            for r in records
        ],
    )


@outbox_app.command("retry")
def outbox_retry(
    outbox_id: int = typer.Argument(..., metavar="ID"), as_user: str | None = ADMIN_AS_OPTION
) -> None:
    """Make a failed or dead message due now."""
    proven_admin(as_user)
    with transaction(desk_engine()) as session:
        ops.retry(session, outbox_id=outbox_id)
    console.print(_("Outbox message #{outbox_id} is due now.").format(outbox_id=outbox_id))


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.add_typer(outbox_app, name="outbox")
