"""After a deliverer dies: at most one duplicate per channel, SMS looked up at Twilio first.

On SQLite and PostgreSQL, against real peers: aiosmtpd counts emails by Message-ID; SMS go to
``twilio_recorder`` (tests/twilio_recorder.py), which has Prism check each request's contract
and records each message "Twilio" accepted, and answers the lookup (list Messages) with what it
recorded. Covered here:

- the crash test: 200 emails and 200 SMS, real ``cxdesk worker`` processes killed with SIGKILL
  mid-batch (once mid-email, once mid-SMS) while another process writes check-ins, then a third
  worker finishes: every message arrived, an email at most twice per kill, no SMS twice;
- an SMS whose deliverer died between "sending" and its result is found at Twilio and recorded
  with its SID, not sent again; one that never reached Twilio is sent once after the lookup;
  while Twilio cannot be asked (the lookup refused), it is not sent blindly but retried later.

This file is also the check-in writer process (``_checkins_main`` at the bottom).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cxdesk.config import load_settings
from cxdesk.engine import outbox as outbox_module
from cxdesk.engine import staleness
from cxdesk.engine.batch import LEASE_USE
from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.channels.sms import SmsOut, send_sms_batch
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.outbox import (
    LEASE,
    Claim,
    claim_due,
    record_result,
    record_then_start,
    retry,
)
from cxdesk.engine.worker import DeliveryWorker, WorkerReport
from cxdesk.store.db import make_engine, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.surveys import submit_response
from tests.cli_helpers import console_script
from tests.peers import (
    TWILIO_TEST_ACCOUNT_SID,
    TWILIO_TEST_FROM,
    SmtpPeer,
    TwilioStub,
    twilio_settings,
)
from tests.test_delivery import (
    WAIT_S,
    message_id_of,
    outbox,
    queue_emails,
    received_ids,
    smtp_variables,
    wait_until,
)
from tests.twilio_recorder import TwilioRecorder

REPO_ROOT = Path(__file__).resolve().parents[1]
EACH = 200
"""Emails, and SMS, queued for the crash test."""


def twilio_variables_for(url: str) -> dict[str, str]:
    """The settings a worker needs to send SMS to the Twilio look-alike at ``url``."""
    return {
        "TWILIO_ACCOUNT_SID": TWILIO_TEST_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "test-token",
        "CXDESK_SMS_FROM": TWILIO_TEST_FROM,
        "CXDESK_TWILIO_API_URL": url,
    }


def lease_end(engine: Engine, *ids: int) -> datetime:
    """A moment past the lease of every row of ``ids`` (each "sending" mark renews its own)."""
    return max(r.claimed_until for r in outbox(engine, *ids) if r.claimed_until) + timedelta(
        seconds=1
    )


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process writing its output to ``log``; killed at the end if still running."""
    with log.open("w") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True, env=env
        )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def kill_when(child: subprocess.Popen[str], condition: Callable[[], object], what: str) -> None:
    """SIGKILL ``child`` once ``condition()`` holds (it must still be running then)."""
    wait_until(condition, what)
    assert child.poll() is None, "the worker ended before it was killed"
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=WAIT_S)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_kill_9_mid_batch_with_checkins_written_doubles_at_most_one_email_per_kill(
    db_url: str, engine: Engine, smtp_server: SmtpPeer, twilio_recorder: TwilioRecorder,
    tmp_path: Path,
) -> None:  # fmt: skip
    peer = smtp_server
    _key, ids = queue_emails(engine, EACH, EACH)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "CXDESK_DATABASE_URL": db_url,
        **smtp_variables(peer),
        **twilio_variables_for(twilio_recorder.url),
    }
    worker = [str(console_script()), "worker", "--poll", "0.2"]
    writer = [sys.executable, __file__, db_url]
    with process(writer, env, tmp_path / "checkins.log") as checkins:
        wait_until(lambda: "checked in" in (tmp_path / "checkins.log").read_text(), "check-ins")
        with process(worker, env, tmp_path / "worker-1.log") as first:
            kill_when(first, lambda: len(peer.received) >= 30, "30 emails from the 1st worker")
        sms_before = len(twilio_recorder.bodies())
        with process(worker, env, tmp_path / "worker-2.log") as second:
            kill_when(
                second,
                lambda: len(twilio_recorder.bodies()) >= sms_before + 20,
                "20 SMS from the 2nd worker",
            )
        assert "checked in" in (tmp_path / "checkins.log").read_text().splitlines()[-1]
        assert checkins.poll() is None, (tmp_path / "checkins.log").read_text()
        with process(worker, env, tmp_path / "worker-3.log"):  # takes over when leases end
            wait_until(
                lambda: all(r.status == "sent" for r in outbox(engine, *ids)),
                "the 3rd worker to deliver every message",
                timeout=WAIT_S + LEASE.total_seconds(),
            )
    rows = outbox(engine, *ids)
    emails = Counter({message_id_of(engine, r): 1 for r in rows if r.channel == "email"})
    received = received_ids(peer)
    assert set(received) == set(emails)  # nothing lost, nothing else sent
    assert sum((received - emails).values()) <= 2  # one per kill at most
    texts = Counter(twilio_recorder.bodies())
    assert set(texts) == {r.body for r in rows if r.channel == "sms"}
    assert max(texts.values()) == 1  # the one in doubt was looked up, not sent again
    sids = {sms.body: sms.sid for sms in twilio_recorder.sent}
    assert all(r.provider_id == sids[r.body] for r in rows if r.channel == "sms")
    for log in tmp_path.glob("worker-*.log"):
        assert "Traceback" not in log.read_text(), log.read_text()


def test_an_sms_sent_by_a_deliverer_that_died_is_found_at_twilio_not_sent_again(
    engine: Engine, twilio_recorder: TwilioRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    _key, [sent, never, fresh] = queue_emails(engine, 0, 3)
    # A deliverer marks two SMS "sending", sends the first, and dies before any result.
    dead = claim_due(engine, channel="sms", limit=2)
    assert [m.id for m in dead.messages] == [sent, never]
    assert record_then_start(engine, dead, [], sent) == ([], True)
    first = dead.messages[0]
    settings = twilio_settings(twilio_recorder.url)
    [accepted] = send_sms_batch(settings, [SmsOut(sent, first.to_addr, first.body)])
    assert record_then_start(engine, dead, [], never) == ([], True)  # and it died here
    assert twilio_recorder.bodies() == ["Text 0"]

    for name, value in twilio_variables_for(twilio_recorder.url).items():
        monkeypatch.setenv(name, value)
    worker = DeliveryWorker(engine, load_settings())
    assert worker.run_once().results == {"sent": 1, "failed": 0}  # the two are still leased
    report = worker.run_once(now=lease_end(engine, sent, never))
    assert report.results == {"sent": 2, "failed": 0} and report.found == 1
    assert twilio_recorder.bodies() == ["Text 0", "Text 2", "Text 1"]  # none twice
    assert twilio_recorder.lists == 2  # a lookup for each SMS in doubt, none for the fresh one
    rows = {r.id: r for r in outbox(engine, sent, never, fresh)}
    assert rows[sent].status == "sent" and rows[sent].provider_id == accepted.provider_id
    assert rows[never].status == "sent" and rows[never].provider_id == twilio_recorder.sent[2].sid
    assert rows[sent].attempts == 2


def test_an_sms_in_doubt_is_not_sent_while_twilio_cannot_be_asked(
    engine: Engine, twilio_stub: TwilioStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lookup fails (the stub answers no list call: HTTP 501): the SMS is not sent
    blindly; it waits for a retry, still marked in doubt."""
    _key, [in_doubt] = queue_emails(engine, 0, 1)
    dead = claim_due(engine, channel="sms")
    assert record_then_start(engine, dead, [], in_doubt) == ([], True)  # then it died
    for name, value in twilio_variables_for(twilio_stub.url).items():
        monkeypatch.setenv(name, value)
    worker = DeliveryWorker(engine, load_settings())
    report = worker.run_once(now=lease_end(engine, in_doubt))
    assert report.results == {"sent": 0, "failed": 1}
    assert [r.method for r in twilio_stub.requests] == []  # no message created
    [row] = outbox(engine, in_doubt)
    assert row.status == "failed" and row.sending_at is not None
    assert row.last_error == "looking up an earlier attempt: Twilio HTTP 501 listing messages"


def test_a_batch_counts_its_lease_from_the_claim_not_from_when_it_began(
    engine: Engine, smtp_server: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease runs from the claim, and setting stale rows aside may wait for a lock (up to
    the busy timeout) before the batch begins. Once half the lease passed there, the batch
    starts no message (its rows are given back, none sent): it might outlive its lease."""
    _key, ids = queue_emails(engine, 3)
    for name, value in smtp_variables(smtp_server).items():
        monkeypatch.setenv(name, value)
    lease = timedelta(seconds=2)
    monkeypatch.setattr(outbox_module, "LEASE", lease)
    set_aside = staleness.set_aside_stale

    def after_a_wait(bind: Engine, claim: Claim) -> Claim:  # a lock held meanwhile
        half = lease.total_seconds() * LEASE_USE
        wait_until(lambda: time.monotonic() - claim.leased_at > half, "half the lease to pass")
        return set_aside(bind, claim)

    monkeypatch.setattr(staleness, "set_aside_stale", after_a_wait)
    report = WorkerReport()
    assert DeliveryWorker(engine, load_settings()).deliver_email(report) == len(ids)
    assert report.results == {"sent": 0, "failed": 0} and smtp_server.received == []
    rows = outbox(engine, *ids)
    assert {(r.status, r.claimed_until, r.attempts) for r in rows} == {("pending", None, 0)}


def test_a_retried_sms_whose_attempt_timed_out_is_looked_up_before_it_is_sent_again(
    engine: Engine, twilio_recorder: TwilioRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twilio accepted the SMS but its answer never came (a timeout): the attempt failed with
    its outcome unknown. An admin's ``outbox retry`` keeps it marked in doubt, so the next
    worker finds it at Twilio instead of sending it a second time."""
    _key, [in_doubt] = queue_emails(engine, 0, 1)
    claim = claim_due(engine, channel="sms")
    [message] = claim.messages
    assert record_then_start(engine, claim, [], in_doubt) == ([], True)
    [accepted] = send_sms_batch(
        twilio_settings(twilio_recorder.url), [SmsOut(in_doubt, message.to_addr, message.body)]
    )
    timed_out = "Twilio unreachable at its API: Read timed out. (read timeout=10.0)"
    assert record_result(engine, claim, DeliveryResult(in_doubt, False, None, timed_out, False))
    with transaction(engine) as session:
        retry(session, outbox_id=in_doubt)

    for name, value in twilio_variables_for(twilio_recorder.url).items():
        monkeypatch.setenv(name, value)
    report = DeliveryWorker(engine, load_settings()).run_once()
    assert report.results == {"sent": 1, "failed": 0} and report.found == 1
    assert twilio_recorder.bodies() == ["Text 0"]  # not twice
    assert twilio_recorder.lists == 1
    [row] = outbox(engine, in_doubt)
    assert (row.status, row.provider_id) == ("sent", accepted.provider_id)


# -- the check-in writer process ---------------------------------------------------------------


def _checkins_main(db_url: str) -> None:
    """Check customers in, one transaction each, until killed; a line after each. A pause
    between them (a desk far busier than a real one still has some) lets the deliverers'
    commits in: SQLite's busy wait would otherwise starve them behind a writer that never
    lets go of the lock."""
    engine = make_engine(db_url)
    for n in range(1_000_000):
        time.sleep(0.05)
        with unit_of_work(engine) as session:
            answers = {"first_name": f"Walk-in {n}", "last_name": "Customer", "product": "360",
                       "email": f"walkin{n}@example.com"}  # fmt: skip
            submit_response(
                session, actor=get_user(session, "vera"), survey_name="checkin", answers=answers
            )
        print(f"{n + 1} checked in", flush=True)


if __name__ == "__main__":
    _checkins_main(*sys.argv[1:])
