"""The worker's SLA pass: ``sla.warning`` when a running target passes its warning time,
``sla.breached`` when it passes its due time, once per ticket, target, kind and clock start,
however many workers run on however many machines.

Each alert is one desk transaction (``unit_of_work``): the ``sla_alert`` row (its unique key
refuses another worker's copy: an INSERT that does nothing, then nothing more happens), the
event (kind ``sla.warning``/``sla.breached``, field the target, to-value the due time) and the
workflows that react to it (notify, escalate, ``set_priority``) commit together or not at all.
A workflow that fails undoes its own alert only, which is held back (``AlertBackoff``): tried
again after a minute, then twice as long each time up to an hour, its warning logged once per
try, while the other alerts due are raised meanwhile: the scan reads past the held-back ones,
so that however many keep failing they cannot starve the rest (a try counts towards the pass's
limit, failed or not).

Not raised: for paused tickets (their clock stands still), for resolved ones, and for targets
already done, even late (``cxdesk report sla`` counts a late one as breached). A pass that
finds nothing costs one read, which on SQLite takes no write lock.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
"""A bounded number of tries per pass; the rest waits for the next one (a second later)."""
EVENT_KINDS = {"warning": "sla.warning", "breached": "sla.breached"}
RETRY_FIRST = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
"""A failing alert is tried again after a minute, then twice as long each time, up to an hour."""

AlertKey = tuple[int, str, str, datetime]
"""An alert's unique key: ticket, target, kind and clock start (as ``sla_alert``'s)."""


@dataclass
class _Held:
    failures: int
    retry_at: datetime


class AlertBackoff:
    """The alerts whose workflow failed in this process, each held back until its retry time.

    Kept in memory, per engine (one per worker), not in the database: a failure writes nothing
    (its transaction is undone whole, so the ``sla_alert`` unique key still makes the alert
    once with several workers), there is no migration, and a worker that restarts only tries
    each failing alert once more, a minute later. What is held back is forgotten once raised
    (here or by another worker) or no longer due.
    """

    def __init__(self) -> None:
        self._held: dict[AlertKey, _Held] = {}
        self._lock = threading.Lock()

    def waiting(self, now: datetime) -> int:
        """How many alerts are held back at ``now`` (the scan reads that many more rows)."""
        with self._lock:
            return sum(held.retry_at > now for held in self._held.values())

    def holds(self, alert: DueAlert, now: datetime) -> bool:
        """Is ``alert`` still waiting for its retry time at ``now``?"""
        with self._lock:
            held = self._held.get(key_of(alert))
        return held is not None and held.retry_at > now

    def failed(self, alert: DueAlert, now: datetime) -> timedelta:
        """Hold ``alert`` back after a failure; the wait until its next try."""
        with self._lock:
            held = self._held.setdefault(key_of(alert), _Held(0, now))
            held.failures += 1
            wait = min(RETRY_CAP, RETRY_FIRST * 2 ** min(held.failures - 1, 32))
            held.retry_at = now + wait
        return wait

    def forget(self, alert: DueAlert) -> None:
        with self._lock:
            self._held.pop(key_of(alert), None)

    def keep_only(self, due: list[DueAlert]) -> None:
        """A scan that found every alert due: forget the held-back ones no longer among them."""
        keys = {key_of(alert) for alert in due}
        with self._lock:
            self._held = {key: held for key, held in self._held.items() if key in keys}


_BACKOFFS: weakref.WeakKeyDictionary[Engine, AlertBackoff] = weakref.WeakKeyDictionary()
_BACKOFFS_LOCK = threading.Lock()


def backoff_of(engine: Engine) -> AlertBackoff:
    """The alerts held back by the worker of ``engine`` (one per engine, as long as it lives)."""
    with _BACKOFFS_LOCK:
        return _BACKOFFS.setdefault(engine, AlertBackoff())


def key_of(alert: DueAlert) -> AlertKey:
    return (alert.ticket_id, alert.target, alert.kind, as_utc(alert.since))


def raise_sla_alerts(
    engine: Engine, *, now: datetime | None = None, limit: int = ALERTS_PER_PASS
) -> int:
    """Raise the SLA alerts due at ``now`` (default: the clock); how many this worker raised
    (another worker's are not counted)."""
    now = now or utcnow()
    backoff = backoff_of(engine)
    wanted = limit + backoff.waiting(now)  # the held-back ones may be among the first found
    with read_session(engine) as session:
        due = due_alerts(session, now=now, limit=wanted)
    if len(due) < wanted:
        backoff.keep_only(due)
    raised = tried = 0
    for alert in due:
        if tried >= limit:
            break
        if backoff.holds(alert, now):
            continue
        tried += 1
        try:
            raised += _raise(engine, alert, now)
        except Exception as error:
            if is_unreachable(error):
                raise  # the pass fails and is said once (``engine.worker``)
            # A workflow that fails (a task's DeskError, or a bug) undoes this alert only: it
            # is held back, and the other alerts and the deliveries go on.
            wait = backoff.failed(alert, now)
            logger.warning("SLA %s %s of ticket %s not raised yet (tried again in %s): %s",
                           alert.target, alert.kind, alert.ticket_id, _minutes(wait), error,
                           exc_info=not isinstance(error, DeskError))  # fmt: skip
        else:
            backoff.forget(alert)
    return raised


def _minutes(wait: timedelta) -> str:
    return f"{wait.total_seconds() / 60:.0f} min"


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
