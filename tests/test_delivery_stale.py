"""Stale messages through a real worker (issue 13, item 8), on SQLite and PostgreSQL.

The demo desk through the CLI; emails to aiosmtpd (``smtp_server``), SMS to Twilio's contract
(Prism) or to a recording Twilio look-alike where the test must see that no request was made.
What the issue measured on main: "Maya Chen is ready to help you" reached a customer after the
ticket was resolved, and after it had moved to another expert; messages queued while nothing
delivered went out hours later. Here each such message is not sent (the server received
nothing for it) and is marked ``stale`` with its reason, in ``cxdesk outbox list`` and the
ticket's log, while the messages still worth sending go out.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from cxdesk.config import load_settings
from cxdesk.engine.worker import DeliveryWorker
from tests.cli_helpers import Cli, assert_one_error_line, dump_tables
from tests.peers import TWILIO_TEST_ACCOUNT_SID, TWILIO_TEST_FROM, SmtpPeer, TwilioStub
from tests.test_delivery import (  # noqa: F401 (mail_env and sms_env are fixtures)
    CUSTOMER,
    SID,
    check_in_and_pull,
    mail_env,
    ok,
    outbox,
    outbox_rows,
    sms_env,
)

ADA = {**CUSTOMER, "product": "Stats iQ", "email": "ada@example.com", "phone": "1-415-555-2671"}
ANN = {**ADA, "email": "ann@example.com", "phone": "1-415-555-2672"}
TABLES = ["outbox", "event"]
BO = {**ADA, "email": "bo@example.com", "phone": "1-415-555-2673"}


def rows_of(cli: Cli, key: str) -> list[dict[str, object]]:
    return [row for row in outbox_rows(cli) if row["ticket"] == key]


def recipients(peer: SmtpPeer) -> list[str]:
    return [to for item in peer.received for to in item.rcpt_tos]


CUSTOMER_UPDATES = ("Checked in: tell the customer", "Near the front: tell the customer")
DIGEST = "Daily digest"
"""The demo's scheduled email, 18:00 in Denver (01:00 UTC): a worker pass whose clock is moved
past it sends it, so a test run in the minutes before would count one message more."""


def demo_with_ready_messages_only(cli: Cli) -> None:
    """The demo desk without its waiting-room SMS (check-in, nearly next) and its daily
    digest: what is queued here is a pull's "ready" SMS and email, the messages these tests
    are about, at whatever time of day they run."""
    ok(cli("demo"))
    for name in (*CUSTOMER_UPDATES, DIGEST):
        ok(cli("workflow", "disable", name))


@pytest.mark.usefixtures("mail_env", "sms_env")
def test_ready_messages_for_a_resolved_or_reassigned_ticket_are_not_sent(
    cli: Cli, engine: Engine, smtp_server: SmtpPeer
) -> None:
    peer = smtp_server
    demo_with_ready_messages_only(cli)
    resolved = check_in_and_pull(cli, ADA, "Stats iQ", "maya")
    moved = check_in_and_pull(cli, ANN, "Stats iQ", "maya")
    fresh = check_in_and_pull(cli, BO, "Stats iQ", "kenji")
    ok(cli("ticket", "update", resolved, "--as", "maya", "--status", "resolved",
           "--comment", "Explained weighting"))  # fmt: skip
    ok(cli("ticket", "update", moved, "--as", "maya", "--owner", "kenji",
           "--comment", "Kenji knows this one"))  # fmt: skip

    line = ok(cli("worker", "--once"))
    # The four "ready" messages, and the check-in SMS of the demo's sample ticket pulled first.
    assert "failed 0, 5 stale (not sent)" in line, line

    # Nothing reached the two customers; the third heard from Kenji, by email and SMS.
    assert "ada@example.com" not in recipients(peer) and "ann@example.com" not in recipients(peer)
    [to_bo] = [item for item in peer.received if item.rcpt_tos == ["bo@example.com"]]
    assert str(to_bo.message["Subject"]) == f"Kenji Sato is ready to help you ({fresh})"
    sms, email = rows_of(cli, fresh)
    assert (sms["status"], email["status"]) == ("sent", "sent")
    assert SID.match(str(sms["provider_id"]))

    expected = {
        resolved: "ticket resolved",
        moved: "owner changed: Maya Chen -> Kenji Sato",
    }
    stale_ids = []
    for key, reason in expected.items():
        ours = rows_of(cli, key)[:2]
        assert [(r["channel"], r["status"], r["last_error"], r["attempts"], r["provider_id"])
                for r in ours] == [
            ("sms", "stale", reason, 0, None),
            ("email", "stale", reason, 0, None),
        ]  # fmt: skip
        stale_ids += [r["id"] for r in ours]
        log = json.loads(ok(cli("ticket", "show", key, "--json")))["log"]
        assert sorted(
            (e["field"], e["detail"]) for e in log if e["kind"] == "message.stale"
        ) == sorted((r["channel"], f"outbox #{r['id']} not sent: {reason}") for r in ours)
        assert not any(e["kind"] == "message.sent" for e in log)
        assert f"not sent: {reason}" in ok(cli("ticket", "show", key))
    stale = outbox_rows(cli, "--status", "stale")
    assert [r["id"] for r in stale if r["ticket"] in expected] == stale_ids
    listed = ok(cli("outbox", "list", "--status", "stale"))
    assert all(reason in listed for reason in expected.values())

    # A stale message cannot be retried; another pass leaves it alone.
    before = dump_tables(engine, TABLES)
    assert_one_error_line(cli("outbox", "retry", str(stale_ids[0])), "stale", "failed or dead")
    assert dump_tables(engine, TABLES) == before
    # The CSAT written when the ticket was resolved is not stale because it is resolved.
    [csat] = rows_of(cli, resolved)[2:]
    [row] = outbox(engine, int(str(csat["id"])))
    report = DeliveryWorker(engine, load_settings()).run_once(now=row.due_at)
    assert (report.results, report.stale) == ({"sent": 1, "failed": 0}, 0)
    [survey] = [item for item in peer.received if item.rcpt_tos == ["ada@example.com"]]
    assert str(survey.message["Subject"]) == f"How did Maya Chen do? ({resolved})"
    assert [r["status"] for r in outbox_rows(cli, "--status", "stale")] == ["stale"] * 5


@pytest.fixture
def sms_stub_env(monkeypatch: pytest.MonkeyPatch, twilio_stub: TwilioStub) -> TwilioStub:
    """Workers made in this test send SMS to a Twilio look-alike that records each request."""
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", TWILIO_TEST_ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "test-token")
    monkeypatch.setenv("CXDESK_SMS_FROM", TWILIO_TEST_FROM)
    monkeypatch.setenv("CXDESK_TWILIO_API_URL", twilio_stub.url)
    return twilio_stub


@pytest.mark.usefixtures("mail_env")
def test_messages_queued_while_nothing_delivers_go_stale_after_their_window(
    cli: Cli, engine: Engine, smtp_server: SmtpPeer, sms_stub_env: TwilioStub
) -> None:
    """The worker comes back 16 minutes after the pull: the 15-minute "ready" SMS and email
    are stale; neither SMTP nor Twilio got a thing."""
    demo_with_ready_messages_only(cli)
    key = check_in_and_pull(cli, ADA, "Stats iQ", "maya")
    queued = outbox(engine)
    assert queued and {m.status for m in queued} == {"pending"}
    until = max(m.valid_until for m in queued if m.valid_until is not None)
    late = until + timedelta(seconds=1)

    report = DeliveryWorker(engine, load_settings()).run_once(now=late)
    assert (report.results, report.stale) == ({"sent": 0, "failed": 0}, len(queued))
    assert smtp_server.received == [] and sms_stub_env.requests == []
    for row in rows_of(cli, key):
        assert row["status"] == "stale"
        assert str(row["last_error"]).startswith("not sent in time (worth sending until ")
    # Within its window the same kind of message goes out (the stub answered the SMS).
    ok(cli("ticket", "update", key, "--as", "maya", "--owner", "kenji", "--comment", "Kenji"))
    fresh = check_in_and_pull(cli, ANN, "Stats iQ", "kenji")
    assert DeliveryWorker(engine, load_settings()).run_once().results == {"sent": 2, "failed": 0}
    assert [r.form["To"] for r in sms_stub_env.requests] == ["+14155552672"]
    assert recipients(smtp_server) == ["ann@example.com"]
    assert {r["status"] for r in rows_of(cli, fresh)} == {"sent"}
