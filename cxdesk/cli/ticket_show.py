"""``cxdesk ticket show`` and ``cxdesk ticket attachment``: reading one ticket, its
conversation, its files and the customer's other tickets (``store.conversation``).

A file is written only at the path given with ``--output`` (never at a name taken from the
attachment), owner-only, and never over an existing file without ``--force``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from cxdesk.cli.common import (
    AS_OPTION,
    console,
    desk_engine,
    padded,
    print_json,
    print_table,
    proven,
    shown_at,
)
from cxdesk.cli.tickets import ticket_app
from cxdesk.errors import Conflict, DeskError
from cxdesk.i18n import N_, _
from cxdesk.labels import event_label, field_value, label
from cxdesk.store import tickets as ops
from cxdesk.store.conversation import (
    attachment_content,
    conversation,
    customer_history,
    describe,
    size_text,
    ticket_attachments,
)
from cxdesk.store.db import read_session
from cxdesk.store.escalation_steps import escalation_timeline
from cxdesk.store.models import utcnow
from cxdesk.store.sla import STATE_WORDS, TARGET_WORDS, SlaState, ticket_sla
from cxdesk.store.sla_display import clock_time
from cxdesk.store.user_files import save_user_file
from cxdesk.store.waiting import wait_fields
from cxdesk.text import printable

FIELDS = {
    "status": N_("status"),
    "priority": N_("priority"),
    "team": N_("team"),
    "origin_team": N_("origin team"),
    "owner": N_("owner"),
    "customer_name": N_("customer"),
    "customer_email": N_("email"),
    "customer_phone": N_("phone"),
    "source": N_("source"),
    "created_at": N_("created"),
    "updated_at": N_("updated"),
}
"""The fields ``ticket show`` lists, each with its label (the JSON keeps the field names)."""
ATTACHMENT_COLUMNS = [N_("n"), N_("name"), N_("type"), N_("size")]


def shown_value(name: str, value: object) -> str:
    """A field of ``ticket show`` for people: a code by its label, a time in the desk's zone
    with its offset (``--json`` keeps both as they are)."""
    return shown_at(value) if name.endswith("_at") else field_value(name, value)


@ticket_app.command("show")
def ticket_show(
    key: str, as_json: bool = typer.Option(False, "--json"), as_user: str | None = AS_OPTION
) -> None:
    """A ticket's fields, data, conversation (internal notes, replies to the customer with
    their delivery, the customer's messages), attachments, the customer's other tickets and
    the log."""
    proven(as_user)
    with read_session(desk_engine()) as session:
        ticket = ops.get_ticket(session, key)
        record = ops.tickets_to_dicts(session, [ticket])[0]
        items = conversation(session, ticket)
        history = customer_history(session, ticket)
        log = ops.ticket_log(session, ticket)
        timeline = escalation_timeline(session, ticket)
        waiting = wait_fields(session, ticket)
        now = utcnow()
        service = ticket_sla(session, ticket, now)
    if as_json:
        print_json({
            **record,
            **waiting,
            "escalation": timeline.to_dict() if timeline else None,
            "sla": service,
            "conversation": [item.to_dict() for item in items],
            "history": [other.to_dict() for other in history],
            "log": log,
        })  # fmt: skip
        return
    title = printable(str(record["title"]), lines=False)
    console.print(Text.assemble((str(record["key"]), "bold"), "  ", title))
    for name, title in FIELDS.items():
        value = printable(shown_value(name, record[name]), lines=False)
        console.print(f"  {padded(_(title))}{value}", markup=False)
    if service is not None:
        console.print(sla_line(service, now), markup=False)
    data = record["data"]
    assert isinstance(data, dict)
    if data:
        print_table(N_("Ticket data"), [N_("name"), N_("value")], data.items())
    if record[N_("customer_comment")]:
        comment = printable(str(record["customer_comment"]))
        console.print(_("Customer comment: {comment}").format(comment=comment), markup=False)
    if timeline is not None:
        print_table(
            _("Escalation (estimated resolution: {estimate})").format(
                estimate=timeline.estimate or _("not set")
            ),
            [N_("step"), N_("at"), N_("now")],
            [(s.name, shown_at(s.at), "<-" if s.current else "")
             for s in timeline.steps],
        )  # fmt: skip
    print_table(
        N_("Conversation"),
        [N_("at"), N_("what"), N_("text"), N_("files")],
        [
            (shown_at(item.at), describe(item), item.body,
             ", ".join(str(a.n) for a in item.attachments))
            for item in items
        ],
    )  # fmt: skip
    files = [a for item in items for a in item.attachments]
    if files:
        print_table(
            N_("Attachments"),
            ATTACHMENT_COLUMNS,
            [(a.n, a.name, a.type, size_text(a.size)) for a in files],
        )
    if history:
        print_table(
            N_("Customer's other tickets (newest first)"),
            [N_("key"), N_("title"), N_("status"), N_("created")],
            [(h.key, h.title, label(h.status), shown_at(h.created_at)) for h in history],
        )
    else:
        console.print(_("The customer has no other tickets."))
    print_table(
        N_("Log"),
        [N_("at"), N_("who"), N_("what"), N_("from"), N_("to"), N_("detail")],
        [
            (shown_at(e["at"]), e["who"], f"{event_label(e['kind'])} {e['field'] or ''}".strip(),
             field_value(e["field"], e["from"]), field_value(e["field"], e["to"]),
             e["detail"])
            for e in log
        ],
    )  # fmt: skip


def sla_line(service: dict[str, Any], now: datetime) -> str:
    """``SLA: warning · first response due 14:10 · resolution due 14:45 (Event desk)``: each
    target's due time, or when it was met (or done late); local times, as the desk's screens
    and lists show them (``sla_display.clock_time``)."""

    def hhmm(value: str) -> str:
        return clock_time(datetime.fromisoformat(value), now)

    parts = [_("SLA: {state}").format(state=_(STATE_WORDS[SlaState(service["state"])]))]
    if service["paused_since"]:
        parts.append(_("paused since {time}").format(time=hhmm(service["paused_since"])))
    for target, state in service["targets"].items():
        word = _(TARGET_WORDS[target])
        if state["done_at"] is None:
            parts.append(_("{target} due {time}").format(target=word, time=hhmm(state["due_at"])))
        elif state["state"] == SlaState.met:
            parts.append(_("{target} met {time}").format(target=word, time=hhmm(state["done_at"])))
        else:
            done = hhmm(state["done_at"])
            parts.append(_("{target} met {time} (late)").format(target=word, time=done))
    policy = printable(str(service["policy"] or _("deleted policy")), lines=False)
    return _("{parts} ({policy})").format(parts=" · ".join(parts), policy=policy)


@ticket_app.command("attachment")
def ticket_attachment(
    key: str,
    number: int | None = typer.Argument(
        None, help=N_("Which attachment (N from the list); without it, list them.")
    ),
    output: Path | None = typer.Option(  # noqa: B008
        None, "--output", "-o", help=N_("Where to write attachment N (a file path).")
    ),
    force: bool = typer.Option(False, "--force", help=N_("Replace a file already at --output.")),
    as_user: str | None = AS_OPTION,
) -> None:
    """List a ticket's attachments, or write attachment N to --output."""
    if number is not None and output is None:
        raise DeskError(_("Name the file to write: --output PATH"))
    if number is None and output is not None:
        raise DeskError(_("Say which attachment to write: ticket attachment KEY N --output PATH"))
    proven(as_user)
    with read_session(desk_engine()) as session:
        ticket = ops.get_ticket(session, key)
        if number is None:
            files = ticket_attachments(session, ticket)
        else:
            item, content = attachment_content(session, ticket, number)
    if number is None and not files:
        typer.echo(_("{key} has no attachments.").format(key=ticket.key))
        return
    if number is None:
        print_table(
            _("Attachments of {key}").format(key=ticket.key),
            ATTACHMENT_COLUMNS,
            [(a.n, a.name, a.type, size_text(a.size)) for a in files],
        )
        return
    assert output is not None
    path = output.expanduser()
    try:
        save_user_file(path, content, replace=force)
    except Conflict as error:
        raise DeskError(_("{error} (--force replaces it)").format(error=error)) from None
    written = _("{name} ({size}) written to {path}")
    shown = printable(
        written.format(name=item.name, size=size_text(item.size), path=path), lines=False
    )
    typer.echo(shown)
