"""``cxdesk checkin`` and ``cxdesk ticket ...``: working tickets (``tickets list`` is in
``cli.tickets_list``, which a read loads without the engine)."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlmodel import col, select

from cxdesk.cli.common import (
    AS_OPTION,
    acting_user,
    desk_engine,
    parse_pairs,
    proven,
)
from cxdesk.cli.tickets_list import tickets_app
from cxdesk.engine.dispatch import (
    PulledButNotDispatched,
    auto_assign_and_dispatch,
    pull_and_dispatch,
    unit_of_work,
)
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, ngettext
from cxdesk.store import tickets as ops
from cxdesk.store.db import read_session, transaction
from cxdesk.store.escalation_steps import (
    SETTABLE_STEPS,
    escalation_timeline,
    parse_estimate,
    set_escalation_step,
)
from cxdesk.store.models import OutboxMessage, Ticket
from cxdesk.store.noshow import no_show
from cxdesk.store.replies import reply_to_customer
from cxdesk.store.surveys import submit_response
from cxdesk.store.unpull import unpull
from cxdesk.text import printable

ticket_app = typer.Typer(
    help=N_(
        "One ticket: pull, noshow, create, show, update, comment, reply, macro, escalation,"
        " close, feedback."
    ),
    no_args_is_help=True,
)

ATTACH_OPTION = typer.Option([], "--attach", help=N_("A file to attach (repeatable, at most 5)."))


def checkin(
    as_user: str | None = AS_OPTION,
    answer: list[str] = typer.Option(  # noqa: B008
        [],
        "--answer",
        help=N_(
            "FIELD=VALUE (first_name, last_name, email, phone, username, "
            "product, notes); repeatable."
        ),
    ),
    survey: str = typer.Option("checkin", "--survey", help=N_("The survey answered.")),
    lang: str | None = typer.Option(
        None,
        "--lang",
        help=N_(
            "The customer's language (en, ja, fr, it): their SMS, email and survey page."
            " Default: the desk's."
        ),
    ),
) -> None:
    """Check a customer in; prints the key of each ticket created, one per line."""
    answers = parse_pairs(answer, "--answer")
    who = proven(as_user)
    engine = desk_engine()
    with unit_of_work(engine) as session:
        response = submit_response(
            session,
            actor=acting_user(session, who),
            survey_name=survey,
            answers=answers,
            language=lang,
        )
        keys_statement = select(Ticket.key).where(Ticket.response_id == response.id)
    with read_session(engine) as session:
        keys = session.exec(keys_statement.order_by(col(Ticket.id))).all()
    auto_assign_and_dispatch(engine)  # an auto queue hands the newcomer out at once if it can
    for key in keys:
        typer.echo(key)
    if not keys:
        said = _("Response {id} saved; no workflow created a ticket.").format(id=response.id)
        typer.echo(said, err=True)


@ticket_app.command("pull")
def ticket_pull(
    queue: str | None = typer.Argument(None, help=N_("The queue (or --any).")),
    any_team: bool = typer.Option(
        False, "--any", help=N_("The most urgent waiting ticket across all my teams' queues.")
    ),
    as_user: str | None = AS_OPTION,
) -> None:
    """Take the next waiting ticket of a queue (or of any of my teams); prints its key."""
    if (queue is None) == (not any_team):
        raise DeskError(_("Name a queue or give --any (not both)"))
    who = proven(as_user)
    engine = desk_engine()
    with read_session(engine) as session:  # outside the write transaction: pulls stay short
        actor = acting_user(session, who)
    try:
        pulled = pull_and_dispatch(engine, actor=actor, queue_name=None if any_team else queue)
    except PulledButNotDispatched as warning:  # the ticket is the caller's all the same
        typer.echo(warning.pulled.key)
        typer.echo(str(warning), err=True)
        return
    typer.echo(pulled.key)


@ticket_app.command("noshow")
def ticket_noshow(key: str, as_user: str | None = AS_OPTION) -> None:
    """Your pulled customer is not there: back to the head of the queue, texted; resolved as
    no-show after the desk's number of recalls (noshow_recalls)."""
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        done = no_show(session, actor=acting_user(session, who), key=key)
    if done.resolved:
        said = ngettext(
            "{key} resolved as no-show after {n} recall.",
            "{key} resolved as no-show after {n} recalls.",
            done.recalls,
        )
        typer.echo(said.format(key=done.key, n=done.recalls))
    else:
        said = _("{key} back at the head of its queue (recall {n}).")
        typer.echo(said.format(key=done.key, n=done.recalls))


@ticket_app.command("unpull")
def ticket_unpull(key: str, as_user: str | None = AS_OPTION) -> None:
    """Undo my pull of a ticket (within 15 s): back in its queue, its messages cancelled."""
    who = proven(as_user)
    engine = desk_engine()
    with transaction(engine) as session:
        done = unpull(session, actor=acting_user(session, who), key=key)
    typer.echo(done.summary())


@ticket_app.command("create")
def ticket_create(
    as_user: str | None = AS_OPTION,
    email: str = typer.Option(..., "--email", help=N_("The customer's email.")),
    team: str = typer.Option(..., "--team"),
    comment: str = typer.Option(..., "--comment"),
    priority: str = typer.Option("medium", "--priority"),
    status: str = typer.Option("new", "--status"),
    owner: str | None = typer.Option(None, "--owner"),
    name: str = typer.Option("", "--name", help=N_("The customer's name.")),
) -> None:
    """Open a ticket by hand (the "+" form); prints its key."""
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        ticket = ops.create_manual_ticket(
            session,
            actor=acting_user(session, who),
            customer_email=email,
            team=team,
            comment=comment,
            priority=priority,
            status=status,
            owner=owner,
            customer_name=name,
        )
    typer.echo(ticket.key)


IF_VERSION_OPTION = typer.Option(
    None,
    "--if-version",
    help=N_(
        "Only if the ticket is still at this version ('ticket show --json' gives it): "
        "refused if someone changed it since."
    ),
)
"""``--if-version`` of ``ticket update`` and ``ticket macro`` (``store.ticket_versions``)."""


@ticket_app.command("update")
def ticket_update(
    key: str,
    as_user: str | None = AS_OPTION,
    comment: str = typer.Option(..., "--comment", help=N_("Required: why it changed.")),
    status: str | None = typer.Option(None, "--status"),
    priority: str | None = typer.Option(None, "--priority"),
    team: str | None = typer.Option(None, "--team"),
    owner: str | None = typer.Option(
        None, "--owner", help=N_("A member of the team; '' unassigns.")
    ),
    attach: list[Path] = ATTACH_OPTION,  # noqa: B008
    if_version: int | None = IF_VERSION_OPTION,
) -> None:
    """Change status, priority, team or owner, with a comment."""
    changes = {
        name: value
        for name, value in (
            ("status", status),
            ("priority", priority),
            ("team", team),
            ("owner", owner),
        )
        if value is not None
    }
    attachments = ops.read_attachment_files(attach)
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        ticket = ops.update_ticket(
            session,
            actor=acting_user(session, who),
            key=key,
            comment=comment,
            changes=changes,
            attachments=attachments,
            if_version=if_version,
        )
    said = _("{key} updated ({status}, version {version}).")
    typer.echo(said.format(key=ticket.key, status=ticket.status, version=ticket.version))


@ticket_app.command("comment")
def ticket_comment(
    key: str,
    as_user: str | None = AS_OPTION,
    comment: str = typer.Option(..., "--comment"),
    attach: list[Path] = ATTACH_OPTION,  # noqa: B008
) -> None:
    """Reply on a ticket, with up to 5 attachments (500 KB each)."""
    attachments = ops.read_attachment_files(attach)
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        ops.add_comment(
            session,
            actor=acting_user(session, who),
            key=key,
            body=comment,
            attachments=attachments,
        )
    typer.echo(_("Comment added to {key}.").format(key=key.upper()))


@ticket_app.command("reply")
def ticket_reply(
    key: str,
    as_user: str | None = AS_OPTION,
    message: str = typer.Option(..., "--message", help=N_("What the customer receives.")),
    channel: str | None = typer.Option(
        None, "--channel", help=N_("email or sms; default email when the ticket has one, else sms.")
    ),
    attach: list[Path] = ATTACH_OPTION,  # noqa: B008
) -> None:
    """Reply to the customer by email or SMS (queued; the worker sends it)."""
    attachments = ops.read_attachment_files(attach)
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        reply = reply_to_customer(
            session,
            actor=acting_user(session, who),
            key=key,
            body=message,
            channel=channel,
            attachments=attachments,
        )
        queued = session.exec(
            select(OutboxMessage).where(OutboxMessage.comment_id == reply.id)
        ).one()
    to = printable(queued.to_addr, lines=False)
    if attachments:
        said = ngettext(
            "Reply to {key} queued by {channel} to {to} with {n} file (outbox #{id}).",
            "Reply to {key} queued by {channel} to {to} with {n} files (outbox #{id}).",
            len(attachments),
        )
    else:
        said = _("Reply to {key} queued by {channel} to {to} (outbox #{id}).")
    said = said.format(
        key=key.upper(), channel=queued.channel, to=to, n=len(attachments), id=queued.id
    )
    typer.echo(said)


@ticket_app.command("close")
def ticket_close(key: str, as_user: str | None = AS_OPTION) -> None:
    """Close your own ticket (as the person who submitted it)."""
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        ticket = ops.close_by_requester(session, actor=acting_user(session, who), key=key)
    typer.echo(_("{key} closed. {message}.").format(key=ticket.key, message=_(ops.CLOSED_MESSAGE)))


@ticket_app.command("feedback")
def ticket_feedback(
    key: str,
    as_user: str | None = AS_OPTION,
    rating: int = typer.Option(..., "--rating", help=N_("1 (poor) to 5 (great).")),
    comment: str = typer.Option("", "--comment"),
) -> None:
    """Leave feedback on your closed ticket, once."""
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        ops.leave_feedback(
            session, actor=acting_user(session, who), key=key, rating=rating, comment=comment
        )
    typer.echo(_("Thank you for your feedback!"))


@ticket_app.command("escalation")
def ticket_escalation(
    key: str,
    as_user: str | None = AS_OPTION,
    step: str | None = typer.Option(None, "--step", help=" | ".join(SETTABLE_STEPS)),
    estimate: str = typer.Option("", "--estimate", help=N_("Estimated resolution, YYYY-MM-DD.")),
    comment: str = typer.Option(..., "--comment", help=N_("Required: why it changed.")),
) -> None:
    """Move an escalated ticket along its timeline and/or set its estimated resolution date."""
    estimated = parse_estimate(estimate)
    who = proven(as_user)
    with unit_of_work(desk_engine()) as session:
        ticket = set_escalation_step(
            session,
            actor=acting_user(session, who),
            key=key,
            step=step,
            estimate=estimated,
            comment=comment,
        )
        timeline = escalation_timeline(session, ticket)
    assert timeline is not None
    if timeline.estimate:
        said = _("{key}: {step}, estimated resolution {estimate}.")
    else:
        said = _("{key}: {step}.")
    typer.echo(said.format(key=ticket.key, step=timeline.current, estimate=timeline.estimate))


def register(app: typer.Typer) -> None:
    app.command()(checkin)
    app.add_typer(ticket_app, name="ticket")
    app.add_typer(tickets_app, name="tickets")
