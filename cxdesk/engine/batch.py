"""One claimed batch being delivered: the gate before each send, and the lease's heartbeat.

``DeliveryWorker`` wraps each channel call in a ``ClaimedBatch``. The channel hands it each
result (``on_result``, kept in memory) and asks it before each message goes on the wire
(``before_send``): the batch then commits, in one transaction, the results so far and
``sending_at`` on that message (``outbox.record_then_start``), and only then lets it go. So a
deliverer never has more than one message sent and not recorded, and that one is marked; one
commit per message sent (results of messages never sent, such as refusals, ride along with the
next one). Leaving the batch commits the last results and gives back the rows it never tried
(``outbox.release``). Once the worker's ``stop`` is set (Ctrl+C, SIGTERM), no further message
starts: the one being sent finishes and is recorded, and the rest are given back.

While the batch runs, a heartbeat thread renews the lease of the rows it still holds every
``outbox.RENEW_EVERY`` (``outbox.renew``, on a connection of its own), so a slow but living
deliverer is never taken over, while a dead one's rows are free after ``outbox.LEASE``. If
renewals fail (the database unreachable) until half the lease has passed since the last one
that worked (or since the claim counted its lease, ``Claim.leased_at``: the claim and the
stale check may have waited for a lock before the batch began), no further message is
started: the lease may run out, and another deliverer would send the same rows. The
"sending" mark itself is refused once the row's lease ran out, and renews it for the send.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from sqlalchemy import Connection, Engine

from cxdesk.engine import outbox
from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.outbox import Claim

LEASE_USE = 0.5
"""The share of the lease after the last renewal during which a message may still start."""


class ClaimedBatch:
    """A context manager around one channel batch of ``claim``; see the module docstring.

    ``sent``, ``found`` (sent by an earlier attempt, not sent again), ``failed`` and ``lost``
    (taken over by another deliverer) count what it committed."""

    def __init__(self, engine: Engine, claim: Claim, *, stop: threading.Event | None = None):
        """``stop``: once set, ``before_send`` lets no further message go."""
        self.engine = engine
        self.claim = claim
        self.stop = stop
        self.sent = self.found = self.failed = self.lost = 0
        self.pending: list[DeliveryResult] = []
        self.tried: set[int] = set()
        self._connection: Connection | None = None
        self._renewed = claim.leased_at  # the claim itself set the first lease
        self._done = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._renew_until_done, name="cxdesk-lease", daemon=True
        )

    def __enter__(self) -> ClaimedBatch:
        self._connection = self.engine.connect()
        self._heartbeat.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        self._heartbeat.join()
        assert self._connection is not None
        try:
            if kind is None:  # after an error the rows stay claimed until the lease runs out
                self._commit(None)
                untried = [m.id or 0 for m in self.claim.messages if m.id not in self.tried]
                outbox.release(self.engine, self.claim, untried)
        finally:
            self._connection.close()

    def on_result(self, result: DeliveryResult) -> None:
        """The channel's ``on_result``: recorded with the next commit."""
        self.tried.add(result.outbox_id)
        self.pending.append(result)

    def before_send(self, outbox_id: int) -> bool:
        """The channel's ``before_send``: commit the results so far and mark ``outbox_id`` as
        being sent; False if it may not go (stopping, the lease at risk or the row taken over)."""
        if self.stop is not None and self.stop.is_set():
            return False
        if time.monotonic() - self._renewed > outbox.LEASE.total_seconds() * LEASE_USE:
            return False
        if not self._commit(outbox_id):
            self.lost += 1
            return False
        return True

    def _commit(self, sending: int | None) -> bool:
        if not self.pending and sending is None:
            return True
        assert self._connection is not None
        recorded, started = outbox.record_then_start(
            self._connection, self.claim, self.pending, sending
        )
        for result, done in zip(self.pending, recorded, strict=True):
            if not done:
                self.lost += 1
            elif result.ok:
                self.sent += 1
                self.found += result.found
            else:
                self.failed += 1
        self.pending.clear()
        return started

    def _renew_until_done(self) -> None:
        while not self._done.wait(outbox.RENEW_EVERY.total_seconds()):
            started = time.monotonic()
            try:
                outbox.renew(self.engine, self.claim)
            except Exception:  # noqa: BLE001 - the database is away: before_send stops in time
                continue
            self._renewed = started
