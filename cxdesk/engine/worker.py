"""The delivery worker: dispatch leftover events, hand out the auto queues' tickets
(``store.assign``), run escalation rules, raise SLA warnings and breaches
(``engine.sla_watch``), run due time-based workflows (``engine.occurrences``), deliver due
messages.

``cxdesk worker`` runs it headless; the TUI runs the same loop in a background thread. Each pass
ends with a SQLite checkpoint (``store.db.checkpoint``), so that writers rarely pay one. Many
workers on many machines may run at once: rows are claimed atomically with a short lease
(``outbox.claim_due``; ``staleness.claim_fresh`` sets the stale ones aside at once), renewed
while the batch is delivered, and no message goes on the wire before the results of the ones
before it and its own "sending" mark are committed (``cxdesk.engine.batch.ClaimedBatch``). So a
worker killed mid-batch leaves at most one message whose outcome is unknown, taken over within
the lease (30 s): an email is sent again with the same (signed) Message-ID, an SMS is looked up
at Twilio first (see ``cxdesk.engine.outbox``).

Outages: ``run_forever`` outlives them. A pass that fails (the database server down, a SQLite
lock held past the busy timeout, a bug) is said once (``on_trouble``), tried again after a
growing wait with jitter (``retry_wait``), however long it takes, and the first pass that
succeeds again is said once (``on_recovery``). Only ``stop`` ends the loop: the message being
sent then finishes and is recorded, no further one starts, the rows claimed and not tried are
given back (due at once, no attempt counted) and nothing more is claimed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from cxdesk.config import Settings
from cxdesk.engine.batch import ClaimedBatch
from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.channels.email import MailSettings, send_email_batch
from cxdesk.engine.channels.sms import SmsOut, SmsSettings, send_sms_batch
from cxdesk.engine.dispatch import auto_assign_and_dispatch, dispatch_backlog
from cxdesk.engine.escalation import run_escalations
from cxdesk.engine.mail_batch import emails_for
from cxdesk.engine.occurrences import run_due_workflows
from cxdesk.engine.outbox import Claim
from cxdesk.engine.sla_watch import raise_sla_alerts
from cxdesk.engine.staleness import claim_fresh
from cxdesk.errors import DESK_UNREACHABLE, DeskError
from cxdesk.store.db import checkpoint, is_unreachable, unreachable_reason

logger = logging.getLogger(__name__)

BATCH = 50
MAX_ROUNDS = 100  # per run_once: a bounded amount of work, then the caller's loop goes on


@dataclass
class WorkerReport:
    """What one pass did, for the CLI and the logs."""

    dispatched: int = 0
    assigned: int = 0
    """Tickets the auto queues gave available experts (``store.assign``)."""
    escalated: int = 0
    sla_alerts: int = 0
    """``sla.warning`` and ``sla.breached`` events this worker raised (``engine.sla_watch``)."""
    scheduled: int = 0
    """Time-based workflow occurrences this worker ran (``engine.occurrences``)."""
    results: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0})
    lost_leases: int = 0
    stale: int = 0
    skipped: int = 0
    """SMS not sent: their number opted out (texted STOP) after they were queued."""
    found: int = 0
    """Of ``results["sent"]``: SMS found at Twilio, sent by an attempt whose outcome was
    unknown (a deliverer that died), so not sent again."""

    def line(self) -> str:
        return (
            f"dispatched {self.dispatched} event(s), escalated {self.escalated} ticket(s), "
            + (f"assigned {self.assigned} ticket(s), " if self.assigned else "")
            + (f"raised {self.sla_alerts} SLA alert(s), " if self.sla_alerts else "")
            + (f"ran {self.scheduled} scheduled workflow(s), " if self.scheduled else "")
            + f"sent {self.results['sent']}, failed {self.results['failed']}"
            + (f" ({self.found} found already sent)" if self.found else "")
            + (f", {self.stale} stale (not sent)" if self.stale else "")
            + (f", {self.skipped} skipped (number opted out)" if self.skipped else "")
            + (f", {self.lost_leases} taken over by another worker" if self.lost_leases else "")
        )

    def add(self, batch: ClaimedBatch) -> None:
        self.results["sent"] += batch.sent
        self.results["failed"] += batch.failed
        self.found += batch.found
        self.lost_leases += batch.lost


RETRY_FIRST_S = 0.5
RETRY_CAP_S = 10.0
"""A failed pass is tried again after about 0.5 s, then twice as long each time, up to 10 s:
the desk app's line goes away within seconds of the database coming back."""


def retry_wait(failures: int) -> float:
    """Seconds to wait after ``failures`` failed passes in a row: the backoff step, of which a
    random 50-100 % (jitter), so that the workers of a desk whose database comes back do not
    all reconnect in the same instant."""
    step = min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** min(max(0, failures - 1), 32))
    return step * random.uniform(0.5, 1.0)


@dataclass
class PassFailure:
    """A run of failed passes, for the one line said when it starts and when it ends."""

    error: Exception
    unreachable: bool
    """The database could not be used (``store.db.is_unreachable``), rather than a bug."""
    since: float
    """When the run started (``time.monotonic()``)."""
    failures: int = 0

    @classmethod
    def of(cls, error: Exception, *, since: float | None = None) -> PassFailure:
        return cls(error, is_unreachable(error), time.monotonic() if since is None else since)

    def line(self) -> str:
        if self.unreachable:
            return f"{DESK_UNREACHABLE}: {unreachable_reason(self.error)}"
        return f"delivery pass failed, retrying: {self.error}"

    def recovery_line(self) -> str:
        took = time.monotonic() - self.since
        what = "desk database reachable again" if self.unreachable else "delivery pass succeeded"
        return f"{what} after {took:.0f} s; delivering"


def log_trouble(failure: PassFailure) -> None:
    """The default ``on_trouble``: a warning in the log; a bug's traceback with it."""
    logger.warning("%s", failure.line(), exc_info=None if failure.unreachable else failure.error)


def log_recovery(failure: PassFailure) -> None:
    logger.warning("%s", failure.recovery_line())


class DeliveryWorker:
    """One worker: its engine and channel settings."""

    def __init__(self, engine: Engine, settings: Settings, *, configured_only: bool = False):
        """``configured_only``: deliver email only when an SMTP host is set (config or
        ``CXDESK_SMTP_HOST``) rather than trying localhost:25 - the desk app's embedded
        worker, so a terminal set up without mail never claims (and fails) the messages a
        real worker elsewhere would send. SMS is claimed only where Twilio is configured,
        always: elsewhere it stays pending, without using up attempts."""
        self.engine = engine
        smtp = settings.extra.get("smtp", {})
        twilio = settings.extra.get("twilio", {})
        smtp = smtp if isinstance(smtp, dict) else {}
        self.mail = MailSettings.load(smtp)
        self.sms = SmsSettings.load(twilio if isinstance(twilio, dict) else {})
        self.email_on = not configured_only or bool(
            os.environ.get("CXDESK_SMTP_HOST") or smtp.get("host")
        )
        try:
            self.sms.check()
            self.sms_on, self.sms_off_reason = True, ""
        except DeskError as error:
            self.sms_on, self.sms_off_reason = False, str(error)

    def channels_note(self) -> str:
        """One line on the channels this worker leaves alone (empty when it delivers both)."""
        notes = []
        if not self.email_on:
            notes.append("email is not configured (set CXDESK_SMTP_HOST): emails stay pending")
        if not self.sms_on:
            notes.append(f"{self.sms_off_reason}; SMS stay pending")
        return "; ".join(notes)

    @contextmanager
    def _batch(
        self, claim: Claim, report: WorkerReport, stop: threading.Event | None
    ) -> Iterator[ClaimedBatch]:
        """Deliver one claim's messages through a ``ClaimedBatch``, counted in ``report``."""
        batch = ClaimedBatch(self.engine, claim, stop=stop)
        try:
            with batch:
                yield batch
        finally:
            report.add(batch)

    def deliver_email(
        self,
        report: WorkerReport,
        *,
        now: datetime | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        if not self.email_on:
            return 0
        claim = claim_fresh(self.engine, channel="email", limit=BATCH, now=now)
        report.stale += claim.stale
        if not claim.messages:
            return 0
        # Rows left out (over the attachment budget) are given back untried by the batch.
        outgoing = emails_for(self.engine, claim.messages, mail_from=self.mail.mail_from)
        with self._batch(claim, report, stop) as batch:
            asyncio.run(
                send_email_batch(
                    self.mail, outgoing, on_result=batch.on_result, before_send=batch.before_send
                )
            )
        return len(outgoing)

    def deliver_sms(
        self,
        report: WorkerReport,
        *,
        now: datetime | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        if not self.sms_on:
            return 0
        claim = claim_fresh(self.engine, channel="sms", limit=BATCH, now=now)
        report.stale += claim.stale
        report.skipped += claim.skipped
        if not claim.messages:
            return 0
        outgoing = [
            SmsOut(outbox_id=m.id or 0, to=m.to_addr, body=m.body, unknown_since=m.sending_at)
            for m in claim.messages
        ]
        with self._batch(claim, report, stop) as batch:
            try:
                send_sms_batch(
                    self.sms, outgoing, on_result=batch.on_result, before_send=batch.before_send
                )
            except DeskError as exc:  # not configured: every message waits, with the reason
                for m in outgoing:
                    batch.on_result(DeliveryResult(m.outbox_id, False, None, str(exc), False))
        return len(outgoing)

    def run_once(
        self, *, now: datetime | None = None, stop: threading.Event | None = None
    ) -> WorkerReport:
        """Everything due now, then return. Once ``stop`` is set, the batch in flight starts
        no further message (its untried rows are given back) and no further batch is claimed.

        ``now`` (default: the clock) is the time that decides what is due and which escalation
        rules fire; tests pass a later one instead of waiting for a delay or a lease.
        """
        report = WorkerReport()
        report.dispatched = dispatch_backlog(self.engine)
        report.assigned = len(auto_assign_and_dispatch(self.engine))
        report.escalated = run_escalations(self.engine, now=now)
        report.sla_alerts = raise_sla_alerts(self.engine, now=now)
        report.scheduled = run_due_workflows(self.engine, now=now)

        def stopping() -> bool:
            return stop is not None and stop.is_set()

        for _round in range(MAX_ROUNDS):
            if stopping():
                break
            emails = self.deliver_email(report, now=now, stop=stop)
            if stopping() or not emails + self.deliver_sms(report, now=now, stop=stop):
                break
        checkpoint(self.engine)  # SQLite: the WAL into the file here, not during a pull
        return report

    def run_forever(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float = 1.0,
        on_trouble: Callable[[PassFailure], None] = log_trouble,
        on_recovery: Callable[[PassFailure], None] = log_recovery,
        after_pass: Callable[[WorkerReport], None] | None = None,
    ) -> None:
        """Pass after pass until ``stop`` is set; a pass that finds nothing waits ``poll``.

        A failed pass - the database unreachable or locked, or anything else - ends neither
        the loop nor the process: ``on_trouble`` hears of the first failure (one line, not
        one per retry), the pass is tried again after ``retry_wait``, however long it takes,
        and ``on_recovery`` hears of the first pass that succeeds again. Setting ``stop``
        ends the batch in flight after the message being sent (recorded; the rows not tried
        are given back) and claims nothing more.
        """
        failure: PassFailure | None = None
        while not stop.is_set():
            try:
                report = self.run_once(stop=stop)
            except Exception as error:
                if failure is None or failure.unreachable != is_unreachable(error):
                    failure = PassFailure.of(error, since=failure.since if failure else None)
                    on_trouble(failure)
                failure.failures += 1
                stop.wait(retry_wait(failure.failures))
                continue
            if failure is not None:
                on_recovery(failure)
                failure = None
            if after_pass is not None:
                after_pass(report)
            busy = (
                report.dispatched
                or report.assigned
                or report.escalated
                or report.sla_alerts
                or report.scheduled
            )
            if not (busy or sum(report.results.values())):
                stop.wait(poll_seconds)
