"""``cxdesk worker`` and ``cxdesk outbox list|retry``: delivering what workflows send."""

from __future__ import annotations

import signal
import threading
import traceback
from datetime import datetime

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
)
from cxdesk.config import load_settings
from cxdesk.engine import outbox as ops
from cxdesk.engine.worker import DeliveryWorker, PassFailure
from cxdesk.store.db import read_session, transaction

outbox_app = typer.Typer(help="Emails and SMS waiting, sent, failed or dead.", no_args_is_help=True)


def worker(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
    poll: float = typer.Option(1.0, "--poll", min=0.1, help="Seconds between idle passes."),
) -> None:
    """Dispatch events, run escalation rules and deliver due email and SMS.

    Runs until Ctrl+C or SIGTERM, through database outages (one line when one starts, one
    when it ends)."""
    delivery = DeliveryWorker(desk_engine(), load_settings())
    if delivery.channels_note():
        err_console.print(f"Note: {delivery.channels_note()}", soft_wrap=True)
    if once:
        console.print(delivery.run_once().line())
        return
    console.print("Worker running; Ctrl+C stops it.")
    run_until_signalled(delivery, poll_seconds=poll)
    console.print("Worker stopped.")


def run_until_signalled(delivery: DeliveryWorker, *, poll_seconds: float) -> None:
    """``delivery.run_forever`` in a thread of its own until the first Ctrl+C or SIGTERM,
    which lets the message being sent finish (recorded; the batch's untried rows given back)
    and returns; a second one stops the process at once (the rows in flight then wait for
    their lease)."""
    stop, finished = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            delivery.run_forever(stop, poll_seconds=poll_seconds, on_trouble=say_trouble,
                                 on_recovery=say_recovery)  # fmt: skip
        except BaseException as error:  # escaped the loop: a bug, shown by the main thread
            failed.append(error)
        finally:
            finished.set()

    # SIGTERM (systemd, docker stop, kill) stops it as Ctrl+C does. The handlers raise in the
    # main thread, which only waits on ``finished``: setting an Event from a handler could
    # deadlock on the Event's own lock, and an interrupted Thread.join() marks a thread that
    # still runs as stopped (CPython 3.11).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        threading.Thread(target=run, name="cxdesk-worker", daemon=True).start()
        try:
            finished.wait()
        except KeyboardInterrupt:
            stop.set()
            err_console.print("Stopping after the message in flight (Ctrl+C again: at once)...")
            finished.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failed:
        raise failed[0]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def say_trouble(failure: PassFailure) -> None:
    """One line on stderr when passes start failing (a bug's traceback with it)."""
    err_console.print(f"{_stamp()} {failure.line()}", soft_wrap=True)
    if not failure.unreachable:
        err_console.print("".join(traceback.format_exception(failure.error)), soft_wrap=True)


def say_recovery(failure: PassFailure) -> None:
    err_console.print(f"{_stamp()} {failure.recovery_line()}", soft_wrap=True)


def _stamp() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")


@outbox_app.command("list")
def outbox_list(
    status: str | None = typer.Option(
        None, "--status", help="pending, sent, failed, dead, stale or bounced."
    ),
    limit: int = typer.Option(500, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """Messages with their status, attempts and last error (or why a stale one was not sent)."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        records = ops.outbox_to_dicts(session, ops.list_outbox(session, status=status, limit=limit))
    if as_json:
        print_json(records)
        return
    print_table(
        "Outbox",
        ["id", "channel", "ticket", "to", "subject", "status", "attempts", "due", "error / reason"],
        [
            (
                r["id"],
                r["channel"],
                r["ticket"],
                r["to"],
                r["subject"],
                r["status"],
                r["attempts"],
                str(r["due_at"])[:19],
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
    console.print(f"Outbox message #{outbox_id} is due now.")


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.add_typer(outbox_app, name="outbox")
