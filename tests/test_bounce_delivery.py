"""A bounce of an email the worker really sent (aiosmtpd), and the SMS a workflow sends instead
(Twilio's contract mock), on the demo desk on both databases."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.inbound.hygiene import classify, record_bounce
from tests.cli_helpers import Cli
from tests.peers import SmtpPeer
from tests.test_delivery import (  # noqa: F401 (mail_env and sms_env are fixtures)
    CUSTOMER,
    EXPERT,
    MAIL_FROM,
    SID,
    check_in_and_pull,
    mail_env,
    ok,
    outbox_rows,
    received_with_id,
    sms_env,
)
from tests.test_hygiene import MAIL

FALLBACK = """\
[[workflows]]
name = "Bounced: text them"
event = "message.bounced"

[[workflows.tasks]]
type = "send_sms"
to = "${tck://Field/customerPhone}"
body = "We could not email you about ${tck://Field/key}. Reply here."
"""


def exim_bounce_of(raw: bytes, recipient: str) -> bytes:
    """What Exim sends back for ``raw``: its report, then the whole message quoted."""
    sample = (MAIL / "bounce-exim.eml").read_bytes()
    marker = b"------ This is a copy of the message, including all the headers. ------\n\n"
    report = sample[: sample.index(marker) + len(marker)].replace(
        b"ann@example.org", recipient.encode()
    )
    return report + raw.replace(b"\r\n", b"\n")


@pytest.mark.slow
@pytest.mark.usefixtures("mail_env", "sms_env")
def test_a_bounced_email_is_marked_and_the_customer_is_texted_instead(
    cli: Cli, engine: Engine, smtp_server: SmtpPeer, tmp_path: Path
) -> None:
    ok(cli("demo"))
    seed = tmp_path / "fallback.toml"
    seed.write_text(FALLBACK)
    ok(cli("seed", str(seed)))
    key = check_in_and_pull(cli, CUSTOMER, "Website/App Feedback", EXPERT)
    ok(cli("worker", "--once"))
    [mail] = [r for r in outbox_rows(cli) if r["ticket"] == key and r["channel"] == "email"]
    assert mail["status"] == "sent"
    sent = received_with_id(smtp_server, mail["provider_id"])

    bounce_mail = exim_bounce_of(sent.raw, CUSTOMER["email"])
    message = email.message_from_bytes(bounce_mail, policy=policy.default)
    verdict = classify(message, own_addresses=[MAIL_FROM.split("<")[1].rstrip(">")])
    assert verdict.kind == "bounce" and verdict.bounce is not None
    with unit_of_work(engine) as s:
        said = record_bounce(s, verdict.bounce)
    assert said.startswith(f"outbox #{mail['id']} to {CUSTOMER['email']} bounced: 550 5.1.1")

    ok(cli("worker", "--once"))
    rows = {r["id"]: r for r in outbox_rows(cli) if r["ticket"] == key}
    assert rows[mail["id"]]["status"] == "bounced"
    [fallback] = [r for r in rows.values() if r["body"].startswith("We could not email you")]
    assert (fallback["channel"], fallback["to"], fallback["status"]) == (
        "sms", "+14155552671", "sent"
    )  # fmt: skip
    assert SID.match(fallback["provider_id"])
