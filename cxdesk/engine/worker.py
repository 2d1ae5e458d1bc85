"""The delivery worker: dispatch leftover events, run escalation rules, deliver due messages.

``cxdesk worker`` runs it headless; the TUI runs the same loop in a background thread. Each
pass ends with a SQLite checkpoint (``store.db.checkpoint``), so that writers rarely pay one. Many
workers on many machines may run at once: rows are claimed atomically with a short lease
(``outbox.claim_due``), renewed while the batch is delivered, and no message goes on the wire
before the results of the ones before it and its own "sending" mark are committed
(``cxdesk.engine.batch.ClaimedBatch``). So a worker killed mid-batch leaves at most one message
whose outcome is unknown, taken over within the lease (30 s): an email is sent again with the
same Message-ID, an SMS is looked up at Twilio first (see ``cxdesk.engine.outbox``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from cxdesk.config import Settings
from cxdesk.engine.batch import ClaimedBatch
from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.channels.email import EmailOut, MailSettings, send_email_batch
from cxdesk.engine.channels.sms import SmsOut, SmsSettings, send_sms_batch
from cxdesk.engine.dispatch import dispatch_backlog
from cxdesk.engine.escalation import run_escalations
from cxdesk.engine.outbox import Claim, claim_due, message_id_for
from cxdesk.errors import DeskError
from cxdesk.store.db import checkpoint

BATCH = 50
MAX_ROUNDS = 100  # per run_once: a bounded amount of work, then the caller's loop goes on


@dataclass
class WorkerReport:
    """What one pass did, for the CLI and the logs."""

    dispatched: int = 0
    escalated: int = 0
    results: dict[str, int] = field(default_factory=lambda: {"sent": 0, "failed": 0})
    lost_leases: int = 0
    found: int = 0
    """Of ``results["sent"]``: SMS found at Twilio, sent by an attempt whose outcome was
    unknown (a deliverer that died), so not sent again."""

    def line(self) -> str:
        return (
            f"dispatched {self.dispatched} event(s), escalated {self.escalated} ticket(s), "
            f"sent {self.results['sent']}, failed {self.results['failed']}"
            + (f" ({self.found} found already sent)" if self.found else "")
            + (f", {self.lost_leases} taken over by another worker" if self.lost_leases else "")
        )

    def add(self, batch: ClaimedBatch) -> None:
        self.results["sent"] += batch.sent
        self.results["failed"] += batch.failed
        self.found += batch.found
        self.lost_leases += batch.lost


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
    def _batch(self, claim: Claim, report: WorkerReport) -> Iterator[ClaimedBatch]:
        """Deliver one claim's messages through a ``ClaimedBatch``, counted in ``report``."""
        batch = ClaimedBatch(self.engine, claim)
        try:
            with batch:
                yield batch
        finally:
            report.add(batch)

    def deliver_email(self, report: WorkerReport, *, now: datetime | None = None) -> int:
        if not self.email_on:
            return 0
        claim = claim_due(self.engine, channel="email", limit=BATCH, now=now)
        if not claim.messages:
            return 0
        outgoing = [
            EmailOut(
                outbox_id=m.id or 0,
                to=m.to_addr,
                from_addr=m.from_addr,
                reply_to=m.reply_to,
                subject=m.subject or "",
                body=m.body,
                message_id=message_id_for(m, m.from_addr or self.mail.mail_from),
            )
            for m in claim.messages
        ]
        with self._batch(claim, report) as batch:
            asyncio.run(
                send_email_batch(
                    self.mail, outgoing, on_result=batch.on_result, before_send=batch.before_send
                )
            )
        return len(outgoing)

    def deliver_sms(self, report: WorkerReport, *, now: datetime | None = None) -> int:
        if not self.sms_on:
            return 0
        claim = claim_due(self.engine, channel="sms", limit=BATCH, now=now)
        if not claim.messages:
            return 0
        outgoing = [
            SmsOut(outbox_id=m.id or 0, to=m.to_addr, body=m.body, unknown_since=m.sending_at)
            for m in claim.messages
        ]
        with self._batch(claim, report) as batch:
            try:
                send_sms_batch(
                    self.sms, outgoing, on_result=batch.on_result, before_send=batch.before_send
                )
            except DeskError as exc:  # not configured: every message waits, with the reason
                for m in outgoing:
                    batch.on_result(DeliveryResult(m.outbox_id, False, None, str(exc), False))
        return len(outgoing)

    def run_once(self, *, now: datetime | None = None) -> WorkerReport:
        """Everything due now, then return.

        ``now`` (default: the clock) is the time that decides what is due and which escalation
        rules fire; tests pass a later one instead of waiting for a delay or a lease.
        """
        report = WorkerReport()
        report.dispatched = dispatch_backlog(self.engine)
        report.escalated = run_escalations(self.engine, now=now)
        for _round in range(MAX_ROUNDS):
            if not (self.deliver_email(report, now=now) + self.deliver_sms(report, now=now)):
                break
        checkpoint(self.engine)  # SQLite: the WAL into the file here, not during a pull
        return report

    def run_forever(self, stop: threading.Event, *, poll_seconds: float = 1.0) -> None:
        """Pass after pass until ``stop`` is set; a pass that finds nothing waits ``poll``."""
        while not stop.is_set():
            report = self.run_once()
            if not (report.dispatched or report.escalated or sum(report.results.values())):
                stop.wait(poll_seconds)
