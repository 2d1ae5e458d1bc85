"""``cxdesk worker`` and ``cxdesk outbox list|retry``: delivering what workflows send."""

from __future__ import annotations

import threading

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
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.store.db import read_session, transaction

outbox_app = typer.Typer(help="Emails and SMS waiting, sent, failed or dead.", no_args_is_help=True)


def worker(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
    poll: float = typer.Option(1.0, "--poll", min=0.1, help="Seconds between idle passes."),
) -> None:
    """Dispatch events, run escalation rules and deliver due email and SMS."""
    delivery = DeliveryWorker(desk_engine(), load_settings())
    if delivery.channels_note():
        err_console.print(f"Note: {delivery.channels_note()}", soft_wrap=True)
    if once:
        console.print(delivery.run_once().line())
        return
    console.print("Worker running; Ctrl+C stops it.")
    stop = threading.Event()
    try:
        delivery.run_forever(stop, poll_seconds=poll)
    except KeyboardInterrupt:
        stop.set()


@outbox_app.command("list")
def outbox_list(
    status: str | None = typer.Option(None, "--status", help="pending, sent, failed or dead."),
    limit: int = typer.Option(500, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
    as_user: str | None = AS_OPTION,
) -> None:
    """Messages with their status, attempts and last error."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        records = ops.outbox_to_dicts(session, ops.list_outbox(session, status=status, limit=limit))
    if as_json:
        print_json(records)
        return
    print_table(
        "Outbox",
        ["id", "channel", "ticket", "to", "subject", "status", "attempts", "due", "last error"],
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
