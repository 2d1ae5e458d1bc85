"""Stale messages: what the outbox no longer sends because its moment has passed.

A message is written for a moment: "Maya Chen is ready to help you" for a ticket Maya has just
pulled, a CSAT survey for a ticket just resolved. ``outbox.enqueue`` remembers that moment on
the row: its ticket's status, owner and team as the text was rendered from them, and a
validity window (``valid_until``: the template's ``valid_minutes`` after the message is due,
default ``outbox.DEFAULT_VALID_FOR``, counted from the time of its cause).

The rule, checked for each message right after a worker claims it (``claim_fresh``): it is
**stale**, and not sent, when

- its window has passed; or
- its ticket has moved on from the state it was written for:
  - another owner (an expert, or nobody) than when it was written, or another team: the
    message named or was meant for the people then in charge;
  - written while the ticket was open (any status of category ``open``: new, open, escalated,
    a custom "Follow up later"...) and the ticket is now resolved or closed: "ready to help
    you", a check-in confirmation, an escalation notice are moot once the work is done;
  - written while the ticket was resolved or closed and the ticket has been reopened: a CSAT
    survey asks about help that turned out not to be finished.

A reply an expert wrote to the customer (a row with ``comment_id``) never goes stale by its
ticket moving on: an expert who replies and then resolves or hands the ticket over at once
still means the reply to go out. Only its window (``store.replies.REPLY_VALID_FOR``, 7 days)
sets it aside.

Moving within a phase is not moving on: a "ready" message still goes out after the status
went from open to "Follow up later" with the same owner, and a CSAT survey written at
"resolved" still goes out after the ticket was closed. Only the state at delivery is compared
with the state written for, not the way between them: a ticket resolved and reopened with the
same owner is open with that owner again. A message with no ticket has only its window; one
queued before migration 0008 has neither, and is sent as before.

A stale row gets status ``stale``, the reason in ``last_error`` (``cxdesk outbox list``), its
claim undone without counting an attempt, and a ``message.stale`` line on its ticket's log,
all in one transaction. It is not sent *now*; if an earlier attempt's outcome is unknown (a
deliverer stopped while sending it: ``sending_at`` is set), it may have been sent then, and
its reason says so (``IN_DOUBT``). The check happens when the batch is claimed; a ticket
that moves on while its batch of at most 50 is being sent does not stop that message.

The same check sets aside an SMS to a number that opted out (texted STOP,
``store.sms_optout``) after it was queued: status ``skipped``, the opt-out as its reason, a
``message.suppressed`` line on its ticket's log; nothing goes to Twilio (which would refuse
it anyway, error 21610). A number that opts back in (START) gets the SMS queued after that.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine, bindparam, select, update

from cxdesk.engine.outbox import Claim, claim_due, held_by
from cxdesk.store.db import read_session, transaction
from cxdesk.store.events import record_event
from cxdesk.store.models import OutboxMessage, Status, StatusCategory, Team, Ticket, User
from cxdesk.store.sms_optout import opted_out_among

OPEN, RESOLVED, CLOSED = "open", "resolved", "closed"
IN_DOUBT = "outcome unknown: an earlier attempt may have sent it"
"""Added to the reason of a stale message marked "sending" (``sending_at``): a deliverer
stopped while sending it, or the attempt failed in a way that may hide a send."""


def phase(status: str | None, category: str | None) -> str:
    """Where a ticket is in its life: ``closed`` (the built-in status), ``resolved`` (any
    status of that category) or ``open`` (everything else)."""
    if status == CLOSED:
        return CLOSED
    return RESOLVED if category == StatusCategory.resolved else OPEN


@dataclass(frozen=True)
class Moment:
    """A claimed message, the ticket state it was written for and its ticket's state now."""

    outbox_id: int
    valid_until: datetime | None
    ticket_id: int | None
    written_status: str | None
    written_category: str | None
    written_owner: int | None
    written_team: int | None
    status: str | None = None
    category: str | None = None
    owner: int | None = None
    team: int | None = None
    written_owner_name: str | None = None
    owner_name: str | None = None
    written_team_name: str | None = None
    team_name: str | None = None
    sending_at: datetime | None = None
    """Set: an earlier attempt may have sent it (its outcome is unknown)."""
    comment_id: int | None = None
    """Set: the message carries an expert's reply, which its ticket moving on does not stop."""


def stale_reason(moment: Moment, now: datetime) -> str | None:
    """Why the message should not be sent at ``now`` (reasons joined by "; "), or None."""
    reasons = []
    written_for_ticket = moment.ticket_id is not None and moment.written_status is not None
    if written_for_ticket and moment.comment_id is None:
        was = phase(moment.written_status, moment.written_category)
        now_phase = phase(moment.status, moment.category)
        if was == OPEN and now_phase != OPEN:
            reasons.append(_phase_change(f"ticket {now_phase}", now_phase, moment.status))
        elif was != OPEN and now_phase == OPEN:
            reasons.append(_phase_change("ticket reopened", "", moment.status))
        if moment.owner != moment.written_owner:
            old, new = moment.written_owner_name or "nobody", moment.owner_name or "nobody"
            reasons.append(f"owner changed: {old} -> {new}")
        if moment.team != moment.written_team:
            reasons.append(f"team changed: {moment.written_team_name} -> {moment.team_name}")
    if moment.valid_until is not None and now > moment.valid_until:
        reasons.append(
            f"not sent in time (worth sending until {moment.valid_until:%Y-%m-%d %H:%M} UTC)"
        )
    if reasons and moment.sending_at is not None:
        reasons.append(IN_DOUBT)
    return "; ".join(reasons) or None


def _phase_change(text: str, plain: str, status: str | None) -> str:
    """``ticket resolved``, or with the status when it says more (``ticket resolved (Won't
    fix)``, ``ticket reopened (open)``)."""
    return text if status == plain else f"{text} ({status})"


# One query for a whole claim: each row with its ticket, both statuses' categories and the
# names a reason quotes (owners and teams then and now). Core tables: seventeen columns.
_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_TICKET = Ticket.__table__  # type: ignore[attr-defined]
_WAS_STATUS, _NOW_STATUS = (Status.__table__.alias(n) for n in ("was_status", "now_status"))  # type: ignore[attr-defined]
_WAS_OWNER, _NOW_OWNER = (User.__table__.alias(n) for n in ("was_owner", "now_owner"))  # type: ignore[attr-defined]
_WAS_TEAM, _NOW_TEAM = (Team.__table__.alias(n) for n in ("was_team", "now_team"))  # type: ignore[attr-defined]
_MOMENTS = (
    select(
        _OUTBOX.c.id.label("outbox_id"),
        _OUTBOX.c.valid_until,
        _TICKET.c.id.label("ticket_id"),
        _OUTBOX.c.written_status,
        _WAS_STATUS.c.category.label("written_category"),
        _OUTBOX.c.written_owner_id.label("written_owner"),
        _OUTBOX.c.written_team_id.label("written_team"),
        _TICKET.c.status,
        _NOW_STATUS.c.category,
        _TICKET.c.owner_id.label("owner"),
        _TICKET.c.team_id.label("team"),
        _WAS_OWNER.c.name.label("written_owner_name"),
        _NOW_OWNER.c.name.label("owner_name"),
        _WAS_TEAM.c.name.label("written_team_name"),
        _NOW_TEAM.c.name.label("team_name"),
        _OUTBOX.c.sending_at,
        _OUTBOX.c.comment_id,
    )
    .select_from(
        _OUTBOX.outerjoin(_TICKET, _TICKET.c.id == _OUTBOX.c.ticket_id)
        .outerjoin(_WAS_STATUS, _WAS_STATUS.c.name == _OUTBOX.c.written_status)
        .outerjoin(_NOW_STATUS, _NOW_STATUS.c.name == _TICKET.c.status)
        .outerjoin(_WAS_OWNER, _WAS_OWNER.c.id == _OUTBOX.c.written_owner_id)
        .outerjoin(_NOW_OWNER, _NOW_OWNER.c.id == _TICKET.c.owner_id)
        .outerjoin(_WAS_TEAM, _WAS_TEAM.c.id == _OUTBOX.c.written_team_id)
        .outerjoin(_NOW_TEAM, _NOW_TEAM.c.id == _TICKET.c.team_id)
    )
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
)
_MARK_STALE = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("outbox_id"), held_by(bindparam("token")))
    .values(
        status=bindparam("status"),
        last_error=bindparam("reason"),
        claimed_until=None,
        attempts=_OUTBOX.c.attempts - 1,  # the claim counted one; nothing was tried
    )
    .returning(_OUTBOX.c.ticket_id, _OUTBOX.c.channel, _OUTBOX.c.to_addr)
)


def find_stale(engine: Engine, claim: Claim) -> dict[int, str]:
    """The claimed messages that should not be sent, with why, at the claim's time; a read
    (on SQLite it does not take the write lock)."""
    if not claim.messages:
        return {}
    now = claim.claimed_at
    with read_session(engine) as session:
        rows = session.connection().execute(_MOMENTS, {"ids": [m.id for m in claim.messages]})
        moments = [Moment(**row._mapping) for row in rows]
    reasons = {m.outbox_id: stale_reason(m, now) for m in moments}
    return {outbox_id: reason for outbox_id, reason in reasons.items() if reason}


def find_opted_out(engine: Engine, claim: Claim) -> dict[int, str]:
    """The claimed SMS to numbers that opted out, with why (``IN_DOUBT`` added when an earlier
    attempt may have sent it); one read."""
    texts = [m for m in claim.messages if m.channel == "sms"]
    if not texts:
        return {}
    with read_session(engine) as session:
        opted_out = opted_out_among(session, [m.to_addr for m in texts])
    return {
        m.id or 0: opted_out[m.to_addr] + (f"; {IN_DOUBT}" if m.sending_at else "")
        for m in texts
        if m.to_addr in opted_out
    }


def set_aside_stale(engine: Engine, claim: Claim) -> Claim:
    """Mark the stale messages of ``claim`` and the SMS to opted-out numbers (status, reason,
    log line; one transaction) and return the claim of the rest, to be sent, with ``stale``
    and ``skipped`` counting those set aside."""
    aside = {i: ("stale", "message.stale", r) for i, r in find_stale(engine, claim).items()}
    skipped = find_opted_out(engine, claim)  # the stronger reason: never to this number
    aside |= {i: ("skipped", "message.suppressed", r) for i, r in skipped.items()}
    if not aside:
        return claim
    with transaction(engine) as session:
        for outbox_id, (status, kind, reason) in aside.items():
            row = (
                session.connection()
                .execute(
                    _MARK_STALE,
                    {
                        "outbox_id": outbox_id,
                        "token": claim.token,
                        "reason": reason[:500],
                        "status": status,
                    },
                )
                .first()
            )
            if row is None:
                continue  # another worker took it over: not ours to send or to mark
            ticket_id, channel, to_addr = row
            record_event(
                session,
                kind=kind,
                actor=None,
                ticket_id=ticket_id,
                field_name=channel,
                to_value=to_addr,
                detail=f"outbox #{outbox_id} not sent: {reason}",
                triggers_workflows=False,
            )
    fresh = [m for m in claim.messages if m.id not in aside]
    return replace(
        claim,
        messages=fresh,
        stale=claim.stale + len(aside) - len(skipped),
        skipped=claim.skipped + len(skipped),
    )


def claim_fresh(
    engine: Engine, *, channel: str, limit: int = 50, now: datetime | None = None
) -> Claim:
    """``outbox.claim_due``, with the stale messages (and SMS to opted-out numbers) set aside:
    claims again while a whole batch was set aside, so an empty claim still means "nothing
    due"."""
    stale = skipped = 0
    while True:
        claim = set_aside_stale(engine, claim_due(engine, channel=channel, limit=limit, now=now))
        stale, skipped = stale + claim.stale, skipped + claim.skipped
        if claim.messages or not (claim.stale or claim.skipped):
            return replace(claim, stale=stale, skipped=skipped)
