"""The durable outbox: every email and SMS a workflow sends, from queued to sent (or dead).

A row is written by ``enqueue`` in the same transaction as the event that caused it, so a
message exists exactly when its cause committed. Workers ``claim_due`` rows atomically (like a
ticket pull: ``UPDATE ... RETURNING``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) by setting a
short lease (``claimed_until``, ``LEASE``) and a token naming the claim (``claim_token``); the
status stays ``pending``/``failed`` while claimed. A living deliverer renews the lease of the
rows it still holds every ``RENEW_EVERY`` (``renew``, a heartbeat), so a slow but alive one is
never taken over; a dead one's rows are taken over by another within ``LEASE`` (30 s).
``record_result`` closes a row only if it is still held by the claim that sent it (its token),
and logs the attempt on the ticket.

At most one duplicate per crashed deliverer, whatever else writes the database: before each
send, a deliverer commits ``sending_at`` on that row in the same transaction as the results of
the messages before it (``record_then_start``), and starts the send only once that commit
returned. The mark is given only while the row's lease is live, and renews it (``LEASE`` from
then), so no other deliverer takes the row over while it is being sent, nor a living one
starts a send after its lease ran out. So at any moment at most one message is sent (or
being sent) without its result committed, and it is marked: after a crash, the next
deliverer sees ``sending_at`` on a row still pending, whose outcome is unknown. Sending ahead
of recording (as an earlier recorder thread did) re-sent every sent-but-unrecorded message
after ``kill -9``: 25-33 of 201 emails with check-ins being written at the same time. One
commit per message costs throughput; it is the price of the bound (see
``benchmarks/delivery.py``).

An email with an unknown outcome is sent again with the same deterministic Message-ID (signed
per row, ``engine.mail_batch.message_id_for``): SMTP has no idempotency and no way to ask, so
the receiver can recognise the repeat. An SMS with an unknown outcome is first looked up at
Twilio (the channel's ``find_sent``) and recorded as sent with the SID found, rather than sent
again. Nothing recorded as sent is ever sent again, and nothing is lost.

A row also remembers what it was written for: its ticket's status, owner and team when it was
queued, and a validity window (``valid_until``). A message whose ticket has moved on or whose
window has passed is not sent but marked ``stale`` (``cxdesk.engine.staleness``), and an SMS
to a number that opted out since it was queued is marked ``skipped``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    case,
    or_,
    update,
)
from sqlmodel import Session, col, select

from cxdesk.errors import Conflict, NotFound, ValidationFailed, must_be_one_of
from cxdesk.i18n import _
from cxdesk.store import in_hand
from cxdesk.store.db import transaction
from cxdesk.store.events import EventFields, event_values, insert_with_line, record_event
from cxdesk.store.in_hand import insert_row, new_row
from cxdesk.store.models import OutboxMessage, Ticket, utcnow

if TYPE_CHECKING:
    from cxdesk.engine.channels import DeliveryResult

CHANNELS = ("email", "sms")
STATUSES = ("pending", "sent", "failed", "dead", "stale", "skipped", "bounced", "cancelled")
"""``skipped``: not sent, the number opted out of SMS after it was queued. ``bounced``: sent,
then reported undelivered (``engine.inbound.hygiene.record_bounce``); final like ``sent``:
never claimed, retried or set aside again. ``cancelled``: never sent, its pull was undone
(``store.unpull``) before a deliverer started sending it; never claimed again."""
MAX_ATTEMPTS = 6
LEASE = timedelta(seconds=30)
"""How long a claim holds its rows without a renewal: a dead deliverer's rows wait this long."""
RENEW_EVERY = timedelta(seconds=10)
"""How often a living deliverer renews the lease of the rows it still holds."""
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
DEFAULT_VALID_FOR = timedelta(hours=24)
"""How long after it was due a message is still sent, when its template sets no
``valid_minutes`` (escalation notices too): a worker down for hours still delivers the
day's messages, but never yesterday's."""


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 30 s, 1 min, 2 min, ... at most an hour."""
    return min(BACKOFF_BASE * (2 ** max(0, attempts - 1)), BACKOFF_CAP)


def enqueue(
    session: Session,
    *,
    channel: str,
    to: str,
    body: str,
    subject: str | None = None,
    from_addr: str | None = None,
    reply_to: str | None = None,
    ticket_id: int | None = None,
    event_id: int | None = None,
    workflow_id: int | None = None,
    delay: timedelta = timedelta(0),
    valid_for: timedelta | None = None,
    written_at: datetime | None = None,
    comment_id: int | None = None,
    thread_refs: str | None = None,
) -> OutboxMessage:
    """Queue one message in the caller's transaction (it commits with its cause).

    The row remembers its ticket's status, owner and team as they are now (what its text was
    rendered from) and is worth sending until ``valid_for`` (default ``DEFAULT_VALID_FOR``)
    after it is due, counted from ``written_at``, the time of its cause (default now): a
    message queued late for an old event has that much less time.

    ``comment_id``: the reply this message carries (None: an automatic message, which email
    marks ``Auto-Submitted``); ``thread_refs``: the Message-IDs of the email conversation so
    far, oldest first, space separated (References; the last is In-Reply-To).
    """
    if channel not in CHANNELS:
        raise ValidationFailed({"channel": must_be_one_of(CHANNELS)})
    now = utcnow()
    window = DEFAULT_VALID_FOR if valid_for is None else valid_for
    ticket = in_hand.get(session, Ticket, ticket_id) if ticket_id is not None else None
    message = new_row(OutboxMessage, dict(
        channel=channel,
        to_addr=to,
        from_addr=from_addr or None,
        reply_to=reply_to or None,
        subject=subject,
        body=body,
        ticket_id=ticket_id,
        event_id=event_id,
        workflow_id=workflow_id,
        due_at=now + delay,
        written_status=ticket.status if ticket else None,
        written_owner_id=ticket.owner_id if ticket else None,
        written_team_id=ticket.team_id if ticket else None,
        valid_until=min(written_at or now, now) + delay + window,
        comment_id=comment_id,
        thread_refs=thread_refs or None,
    ))  # fmt: skip
    due = f", due in {delay}" if delay else ""
    queued = EventFields(kind="message.queued", actor=None, ticket_id=ticket_id,
                         field_name=channel, to_value=to, triggers_workflows=False)  # fmt: skip
    if session.get_bind().dialect.name == "postgresql":  # one round trip for both
        line = event_values(**queued)
        return insert_with_line(session, message, line, detail=("outbox #", due))
    message = insert_row(session, message)
    record_event(session, **queued | {"detail": f"outbox #{message.id}{due}"})
    return message


@dataclass(frozen=True)
class Claim:
    """Rows one worker took, and the token that proves they are still its own."""

    messages: list[OutboxMessage]
    token: str
    claimed_at: datetime
    """The time the claim judged "due" (the clock, or the ``now`` a test passed)."""
    leased_at: float
    """``time.monotonic()`` when the claim's lease was counted from, before its transaction
    (which may wait for the database's lock): the batch's clock for the lease starts here."""
    stale: int = 0
    """How many claimed rows were set aside as stale instead of being handed over to send
    (``staleness.claim_fresh``)."""
    skipped: int = 0
    """How many claimed SMS were set aside because their number opted out (``skipped``)."""


def claim_due(
    engine: Engine, *, channel: str, limit: int = 50, now: datetime | None = None
) -> Claim:
    """Take up to ``limit`` due rows of one channel for this worker, atomically.

    A row's ``sending_at`` is left as it is: set, it tells the new holder that an earlier
    attempt's outcome is unknown."""
    leased_at = time.monotonic()
    now = now or utcnow()
    token = secrets.token_hex(16)
    with transaction(engine) as session:
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.channel == channel,
                col(OutboxMessage.status).in_(("pending", "failed")),
                OutboxMessage.due_at <= now,
                or_(
                    col(OutboxMessage.claimed_until).is_(None),
                    col(OutboxMessage.claimed_until) < now,
                ),
            )
            .order_by(col(OutboxMessage.due_at), col(OutboxMessage.id))
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        # The ids first, then the update: inside ``IN (...)`` PostgreSQL may plan the LIMIT
        # subquery as the inner side of a nested loop and scan it again for each row, where
        # SKIP LOCKED passes over the rows this statement just updated and hands out more:
        # a claim of 2 took 3 rows in a CI run. (The transaction holds the rows' locks, or on
        # SQLite the write lock, between the two.)
        due_ids = list(session.execute(due).scalars())
        if not due_ids:
            return Claim(messages=[], token=token, claimed_at=now, leased_at=leased_at)
        claimed_ids = (
            session.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(due_ids))
                .values(
                    claimed_until=now + LEASE,
                    claim_token=token,
                    attempts=OutboxMessage.attempts + 1,
                )
                .returning(col(OutboxMessage.id))
            )
            .scalars()
            .all()
        )
        rows = session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.id).in_(claimed_ids))
            .order_by(col(OutboxMessage.due_at), col(OutboxMessage.id))
            .execution_options(populate_existing=True)
        ).all()
    return Claim(messages=list(rows), token=token, claimed_at=now, leased_at=leased_at)


_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def held_by(token: str | BindParameter[str]) -> ColumnElement[bool]:
    """A row is "held" by a claim while it has that claim's token and a lease (recording a
    result, giving it back or setting it aside ends the lease)."""
    return (_OUTBOX.c.claim_token == token) & _OUTBOX.c.claimed_until.is_not(None)


# Core, not ORM, prebuilt: these run once or twice per message sent.
_HELD = held_by(bindparam("token"))
_LONGER_LEASE = case(  # never shortens a lease (a claim made with a later ``now`` keeps its own)
    (_OUTBOX.c.claimed_until > bindparam("until"), _OUTBOX.c.claimed_until),
    else_=bindparam("until"),
)
_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("outbox_id"), _HELD)
    .values(
        status="sent",
        sent_at=bindparam("sent_at_value"),
        provider_id=bindparam("provider_id_value"),
        last_error=None,
        claimed_until=None,
    )
    .returning(_OUTBOX.c.ticket_id, _OUTBOX.c.channel, _OUTBOX.c.to_addr)
)
_MARK_SENDING = (  # only while the lease is live, which it renews for the send
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("outbox_id"),
        _HELD,
        _OUTBOX.c.claimed_until > bindparam("sending_at_value"),
    )
    .values(sending_at=bindparam("sending_at_value"), claimed_until=_LONGER_LEASE)
)
_RENEW = update(_OUTBOX).where(_HELD).values(claimed_until=_LONGER_LEASE)


def record_result(bind: Engine | Connection, claim: Claim, result: DeliveryResult) -> bool:
    """Close one claimed row with its delivery result, in a transaction of its own (on the
    batch's connection when given one); False if the row is no longer this claim's."""
    recorded, _started = record_then_start(bind, claim, [result], None)
    return recorded[0]


def record_then_start(
    bind: Engine | Connection,
    claim: Claim,
    results: Sequence[DeliveryResult],
    sending: int | None,
) -> tuple[list[bool], bool]:
    """In one transaction: record ``results`` (in order), then mark row ``sending`` as being
    sent (``sending_at``) and renew its lease for the send. Returns whether each result was
    recorded (False: the row was taken over) and whether the row to send is still this
    claim's with its lease live (if not, do not send it: once the lease ran out another
    deliverer may take it over at any moment)."""
    from cxdesk.engine import sent_then_start  # PostgreSQL's one-statement usual case

    if (
        isinstance(bind, Connection)
        and sending is not None
        and sent_then_start.usable(bind, results, sending)
    ):
        return sent_then_start.record_sent_then_start(bind, claim, results[0], sending)
    with transaction(bind) as session:
        recorded = [_record(session, claim, result) for result in results]
        started = True
        if sending is not None:
            now = utcnow()
            marked = session.connection().execute(
                _MARK_SENDING,
                {"outbox_id": sending, "token": claim.token, "sending_at_value": now,
                 "until": now + LEASE},
            )  # fmt: skip
            started = marked.rowcount == 1
    return recorded, started


def renew(bind: Engine | Connection, claim: Claim) -> int:
    """Extend the lease of the rows this claim still holds (a heartbeat); how many."""
    with transaction(bind) as session:
        renewed = session.connection().execute(
            _RENEW, {"token": claim.token, "until": utcnow() + LEASE}
        )
        return int(renewed.rowcount)


def _record(session: Session, claim: Claim, result: DeliveryResult) -> bool:
    """Close one row with its result in the caller's transaction; False if it is not held."""
    if result.ok:
        row = (
            session.connection()
            .execute(
                _MARK_SENT,
                {
                    "outbox_id": result.outbox_id,
                    "token": claim.token,
                    "sent_at_value": utcnow(),
                    "provider_id_value": result.provider_id,
                },
            )
            .first()
        )
        if row is None:
            return False  # another worker took it over after our lease ran out
        ticket_id, channel, to_addr = row
        kind, detail = "message.sent", result.provider_id or ""
        if result.found:
            detail += " (found sent by an earlier attempt: not sent again)"
    else:
        failed = _record_failure(session, claim, result)
        if failed is None:
            return False
        ticket_id, channel, to_addr, kind, detail = failed
    record_event(
        session,
        kind=kind,
        actor=None,
        ticket_id=ticket_id,
        field_name=channel,
        to_value=to_addr,
        detail=f"outbox #{result.outbox_id} {detail}".strip(),
        triggers_workflows=False,
    )
    return True


def _record_failure(
    session: Session, claim: Claim, result: DeliveryResult
) -> tuple[int | None, str, str, str, str] | None:
    """Mark a failed attempt: retried after a backoff, or dead; None if the lease was lost."""
    message = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.id == result.outbox_id, held_by(claim.token))
        .with_for_update()
    ).first()
    if message is None:
        return None
    # Back off from the time the claim judged "due" when that is later than the clock (a
    # worker run with a later ``now``), so the retry is not due again in the same pass.
    since = max(utcnow(), claim.claimed_at)
    # ``sending_at`` stays on a retried row: a transient failure may hide a send that
    # happened (a timeout after Twilio accepted the SMS), so its retry looks first.
    message.claimed_until = None
    message.last_error = (result.error or "unknown error").splitlines()[0][:500]
    if result.permanent or message.attempts >= MAX_ATTEMPTS:
        message.status, kind = "dead", "message.dead"
    else:
        message.status, kind = "failed", "message.failed"
        message.due_at = since + backoff(message.attempts)
    session.add(message)
    session.flush()
    detail = f"attempt {message.attempts}: {message.last_error}"
    return message.ticket_id, message.channel, message.to_addr, kind, detail


def release(engine: Engine, claim: Claim, outbox_ids: Sequence[int]) -> int:
    """Give back claimed rows this worker did not try: due again at once, their claim not
    counted as an attempt. Rows another worker took over are left alone."""
    if not outbox_ids:
        return 0
    with transaction(engine) as session:
        released = session.connection().execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(list(outbox_ids)), held_by(claim.token))
            .values(claimed_until=None, attempts=_OUTBOX.c.attempts - 1)
        )
        return int(released.rowcount)


def list_outbox(
    session: Session, *, status: str | None = None, limit: int = 500
) -> Sequence[OutboxMessage]:
    statement = select(OutboxMessage)
    if status:
        if status not in STATUSES:
            raise ValidationFailed({"status": must_be_one_of(STATUSES)})
        statement = statement.where(OutboxMessage.status == status)
    return session.exec(statement.order_by(col(OutboxMessage.id)).limit(limit)).all()


def outbox_to_dicts(session: Session, rows: Sequence[OutboxMessage]) -> list[dict[str, object]]:
    ticket_ids = {r.ticket_id for r in rows if r.ticket_id is not None}
    keys = (
        dict(
            session.exec(select(Ticket.id, Ticket.key).where(col(Ticket.id).in_(ticket_ids))).all()
        )
        if ticket_ids
        else {}
    )
    return [
        {
            "id": r.id,
            "channel": r.channel,
            "ticket": keys.get(r.ticket_id) if r.ticket_id else None,
            "to": r.to_addr,
            "subject": r.subject,
            "body": r.body,
            "status": r.status,
            "attempts": r.attempts,
            "due_at": r.due_at.isoformat(),
            "last_error": r.last_error,
            "valid_until": r.valid_until.isoformat() if r.valid_until else None,
            "provider_id": r.provider_id,
            "sent_at": r.sent_at.isoformat() if r.sent_at else None,
        }
        for r in rows
    ]


def retry(session: Session, *, outbox_id: int) -> OutboxMessage:
    """Make a failed or dead row due now, with a fresh count of attempts. Its ``sending_at``
    stays: an SMS whose earlier attempt's outcome is unknown (timed out after Twilio may have
    accepted it) is looked up at Twilio before it is sent again."""
    message = session.exec(
        select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update()
    ).first()
    if message is None:
        raise NotFound(_("No outbox message #{outbox_id}").format(outbox_id=outbox_id))
    if message.status not in ("failed", "dead"):
        raise Conflict(
            _(
                "Outbox message #{outbox_id} is {status}; only failed or dead messages can be "
                "retried"
            ).format(outbox_id=outbox_id, status=message.status)
        )
    if message.valid_until is not None and message.valid_until <= utcnow():
        until = f"{message.valid_until:%Y-%m-%d %H:%M} UTC"
        raise Conflict(
            _(
                "Outbox message #{outbox_id} was worth sending until {until}: it would go stale"
            ).format(outbox_id=outbox_id, until=until)
        )
    message.status, message.due_at, message.attempts = "pending", utcnow(), 0
    message.claimed_until = None
    session.add(message)
    session.flush()
    record_event(
        session,
        kind="message.retry",
        actor=None,
        ticket_id=message.ticket_id,
        field_name=message.channel,
        to_value=message.to_addr,
        detail=f"outbox #{message.id} due now",
        triggers_workflows=False,
    )
    return message
