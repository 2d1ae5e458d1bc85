"""The worker's SLA pass: ``sla.warning`` when a running target passes its warning time,
``sla.breached`` when it passes its due time, once per ticket, target, kind and clock start,
however many workers run on however many machines.

Each alert is one desk transaction (``unit_of_work``): the ``sla_alert`` row (its unique key
refuses another worker's copy: an INSERT that does nothing, then nothing more happens), the
event (kind ``sla.warning``/``sla.breached``, field the target, to-value the due time) and the
workflows that react to it (notify, escalate, ``set_priority``) commit together or not at all.
A workflow that fails undoes its own alert only: the next pass tries it again.

Not raised: for paused tickets (their clock stands still), for resolved ones, and for targets
already done, even late (``cxdesk report sla`` counts a late one as breached). A pass that
finds nothing costs one read, which on SQLite takes no write lock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.store.db import is_unreachable, read_session
from cxdesk.store.events import record_event
from cxdesk.store.models import StatusCategory, Ticket, as_utc, utcnow
from cxdesk.store.sla import TARGET_WORDS, SlaState, sla_view
from cxdesk.store.sla_alerts import DueAlert, claim_alert, due_alerts, note_event
from cxdesk.store.tickets import status_category

logger = logging.getLogger(__name__)

ALERTS_PER_PASS = 100
"""A bounded amount of work per pass; the rest waits for the next one (a second later)."""
EVENT_KINDS = {"warning": "sla.warning", "breached": "sla.breached"}


def raise_sla_alerts(
    engine: Engine, *, now: datetime | None = None, limit: int = ALERTS_PER_PASS
) -> int:
    """Raise the SLA alerts due at ``now`` (default: the clock); how many this worker raised
    (another worker's are not counted)."""
    now = now or utcnow()
    with read_session(engine) as session:
        due = due_alerts(session, now=now, limit=limit)
    raised = 0
    for alert in due:
        try:
            raised += _raise(engine, alert, now)
        except Exception as error:
            if is_unreachable(error):
                raise  # the pass fails and is said once (``engine.worker``)
            # A workflow that fails (a task's DeskError, or a bug) undoes this alert only: it
            # is tried again next pass, and the other alerts and the deliveries go on.
            logger.warning("SLA %s %s of ticket %s not raised yet: %s",
                           alert.target, alert.kind, alert.ticket_id, error,
                           exc_info=not isinstance(error, DeskError))  # fmt: skip
    return raised


def alert_detail(alert: DueAlert) -> str:
    """``first response due 2026-12-07 14:10 UTC``: the event's line in the ticket's log."""
    due = alert.due_at.astimezone(UTC) if alert.due_at.tzinfo else alert.due_at
    return f"{TARGET_WORDS[alert.target]} due {due:%Y-%m-%d %H:%M} UTC"


def _still_due(ticket: Ticket, alert: DueAlert, now: datetime) -> bool:
    """The ticket as the write sees it still has the alert due (no pull or pause between)."""
    view = sla_view(ticket, now)
    if view is None:
        return False
    wanted = SlaState.breached if alert.kind == "breached" else SlaState.warning
    return any(
        t.target == alert.target and t.state == wanted and t.done_at is None
        and t.since == as_utc(alert.since)
        for t in view.targets
    )  # fmt: skip


def _raise(engine: Engine, alert: DueAlert, now: datetime) -> bool:
    with unit_of_work(engine) as session:
        ticket = session.get(Ticket, alert.ticket_id)
        if ticket is None or not _still_due(ticket, alert, now):
            return False
        if status_category(session, ticket.status) != StatusCategory.open:
            return False
        alert_id = claim_alert(session, alert, now=now)
        if alert_id is None:  # another worker's: raised (or being raised) there
            return False
        event_id = record_event(
            session,
            kind=EVENT_KINDS[alert.kind],
            actor=None,
            ticket_id=alert.ticket_id,
            field_name=alert.target,
            to_value=as_utc(alert.due_at).isoformat(),
            detail=alert_detail(alert),
        )
        note_event(session, alert_id, event_id)
    return True
