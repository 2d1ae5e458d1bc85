"""The delivery channels against real peers: aiosmtpd for email, Prism and a stub for Twilio.

No database: a channel takes ``EmailOut``/``SmsOut`` values and reports ``DeliveryResult``s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from cxdesk.engine.channels import DeliveryResult
from cxdesk.engine.channels.email import EmailOut, MailAttachment, MailSettings, send_email_batch
from cxdesk.engine.channels.sms import SmsOut, SmsSettings, send_sms, send_sms_batch
from cxdesk.errors import DeskError
from tests.peers import (
    TWILIO_SPEC,
    TWILIO_TEST_ACCOUNT_SID,
    SmtpPeer,
    TwilioStub,
    twilio_error,
    twilio_settings,
)

CUSTOMER = "Zoë & Ann O'Neil <zoe@example.com>"
SUBJECT = "Zoë & Ann O'Neil — ton expert est prêt"
BODY = "Bonjour Zoë,\n\nVotre expert Łukasz vous appelle.\nhttps://example.com/?a=1&b=%C3%AB"


def mail(outbox_id: int, **changes: object) -> EmailOut:
    values: dict[str, object] = {
        "outbox_id": outbox_id,
        "to": CUSTOMER,
        "from_addr": None,
        "reply_to": "Łukasz Expert <lukasz@example.com>",
        "subject": SUBJECT,
        "body": BODY,
        "message_id": f"<outbox-{outbox_id}.desk-1@cxdesk>",
    }
    values.update(changes)
    return EmailOut(**values)  # type: ignore[arg-type]


def send(settings: MailSettings, messages: Sequence[EmailOut]) -> list[DeliveryResult]:
    seen: list[DeliveryResult] = []
    results = asyncio.run(send_email_batch(settings, messages, on_result=seen.append))
    assert seen == results  # each result reported as it came, in order
    assert [r.outbox_id for r in results] == [m.outbox_id for m in messages]
    for result in results:
        assert result.ok == (result.error is None)
        assert result.error is None or "\n" not in result.error
    return results


def received_ids(peer: SmtpPeer) -> list[str]:
    return [str(item.message["Message-ID"]) for item in peer.received]


# -- email -------------------------------------------------------------------------------------


def test_email_headers_and_body_arrive_as_sent(smtp_server: SmtpPeer) -> None:
    [result] = send(smtp_server.settings(), [mail(42)])

    assert result == DeliveryResult(42, True, "<outbox-42.desk-1@cxdesk>", None, False)
    [item] = smtp_server.received
    message = item.message
    assert item.mail_from == "desk@example.com"
    assert item.rcpt_tos == ["zoe@example.com"]
    assert message["From"].addresses[0].display_name == "Ask the Experts"
    assert message["To"].addresses[0].display_name == "Zoë & Ann O'Neil"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert str(message["Reply-To"]) == "Łukasz Expert <lukasz@example.com>"
    assert str(message["Subject"]) == SUBJECT
    assert str(message["Message-ID"]) == "<outbox-42.desk-1@cxdesk>"
    assert parsedate_to_datetime(str(message["Date"])).tzinfo is not None
    assert message.get_content() == BODY + "\n"  # a text body's last line ends with a newline
    # On the wire, every header is ASCII (RFC 2047 words for the UTF-8 names and subject).
    head = item.raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head


def test_a_batch_goes_over_one_connection(smtp_server: SmtpPeer) -> None:
    messages = [mail(n, to=f"Customer {n} <c{n}@example.com>") for n in range(1, 21)]
    results = send(smtp_server.settings(), messages)

    assert all(r.ok for r in results)
    assert smtp_server.connections == 1
    assert received_ids(smtp_server) == [m.message_id for m in messages]


def test_each_message_waits_for_its_gate_which_sees_every_earlier_result(
    smtp_server: SmtpPeer,
) -> None:
    """``before_send`` runs before each DATA, after the result of every earlier message was
    reported; once it refuses, that message is not completed and none after it is sent."""
    messages = [mail(n, to=f"Customer {n} <c{n}@example.com>") for n in range(1, 6)]
    seen: list[DeliveryResult] = []
    gates: list[tuple[int, list[int]]] = []

    def gate(outbox_id: int) -> bool:
        gates.append((outbox_id, [r.outbox_id for r in seen]))
        assert len(smtp_server.received) == len(seen)  # nothing accepted ahead of its result
        return outbox_id != 4

    results = asyncio.run(
        send_email_batch(smtp_server.settings(), messages, on_result=seen.append, before_send=gate)
    )
    assert gates == [(1, []), (2, [1]), (3, [1, 2]), (4, [1, 2, 3])]
    assert [r.outbox_id for r in results] == [1, 2, 3] and all(r.ok for r in results)
    assert received_ids(smtp_server) == [m.message_id for m in messages[:3]]


def test_from_address_given_by_the_message_wins(smtp_server: SmtpPeer) -> None:
    send(smtp_server.settings(), [mail(1, from_addr="Équipe X <team-x@example.com>")])
    [item] = smtp_server.received
    assert item.mail_from == "team-x@example.com"
    assert str(item.message["From"]) == "Équipe X <team-x@example.com>"


def test_a_reply_is_threaded_and_not_marked_automatic_other_mail_is(
    smtp_server: SmtpPeer,
) -> None:
    """Issue 14: References/In-Reply-To from the thread (a long id folded, never an RFC 2047
    word; an id that is not ``<ascii@ascii>`` dropped), Reply-To from the settings (else the
    From), X-Loop the desk's address, Auto-Submitted on automatic mail only, files attached."""
    long_id = "<" + "DM6PR11MB4073" * 6 + "@DM6PR11MB4073.namprd11.prod.outlook.com>"
    files = (MailAttachment("Pondé\nration.csv", "text/csv", b"a,b\n"),
             MailAttachment("x.bin", "multipart/mixed", b"\x00\x01"))  # fmt: skip
    threaded = mail(1, reply_to=None, thread_refs=("<a@b.example>", "<ü@x>", long_id),
                    automatic=False, attachments=files)  # fmt: skip
    settings = smtp_server.settings(reply_to="Desk answers <answers@example.com>")
    send(settings, [threaded, mail(2, reply_to=None)])
    send(smtp_server.settings(mail_from="Ask <Desk@Example.COM>"), [mail(3, reply_to=None)])
    bad_setting = send(smtp_server.settings(reply_to="not an address"), [mail(4, reply_to=None)])

    reply, automatic, default = (item.message for item in smtp_server.received)
    assert str(reply["References"]).split() == ["<a@b.example>", long_id]
    assert str(reply["In-Reply-To"]) == long_id
    assert b"=?" not in smtp_server.received[0].raw.split(b"References:")[1].split(b"\r\nX-")[0]
    assert reply["Auto-Submitted"] is None
    assert str(reply["Reply-To"]) == "Desk answers <answers@example.com>"
    assert str(reply["X-Loop"]) == "desk@example.com"
    sent_files = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
                  for p in reply.iter_attachments()]  # fmt: skip
    assert sent_files == [
        ("Pondé_ration.csv", "text/csv", b"a,b\n"),
        ("x.bin", "application/octet-stream", b"\x00\x01"),
    ]
    assert str(automatic["Auto-Submitted"]) == "auto-generated"
    assert automatic["References"] is None and automatic["In-Reply-To"] is None
    assert str(default["Reply-To"]) == "Ask <Desk@Example.COM>"  # no setting: the From
    assert str(default["X-Loop"]) == "desk@example.com"
    [refused] = bad_setting
    assert not refused.permanent and "the reply_to setting" in (refused.error or "")


@pytest.mark.parametrize("tls", ["starttls", "tls"])
def test_tls(smtp_server: SmtpPeer, monkeypatch: pytest.MonkeyPatch, tls: str) -> None:
    if not Path(smtp_server.cert_file).exists():
        pytest.skip("the openssl command is needed to make a test certificate")
    smtp_server.start(tls=tls)
    # Without trusting the self-signed certificate, the client refuses the server.
    [untrusted] = send(smtp_server.settings(), [mail(1)])
    assert not untrusted.ok and not untrusted.permanent
    assert "TLS" in (untrusted.error or "") or "certificate" in (untrusted.error or "")

    monkeypatch.setenv("SSL_CERT_FILE", smtp_server.cert_file)
    assert send(smtp_server.settings(), [mail(2), mail(3)])[1].ok
    assert received_ids(smtp_server) == ["<outbox-2.desk-1@cxdesk>", "<outbox-3.desk-1@cxdesk>"]


def test_login_right_and_wrong(smtp_server: SmtpPeer) -> None:
    smtp_server.credentials = ("desk", "s3cret")

    assert send(smtp_server.settings(), [mail(1)])[0].ok
    wrong = send(smtp_server.settings(password="nope"), [mail(2), mail(3)])
    missing = send(smtp_server.settings(username="", password=""), [mail(4)])

    assert received_ids(smtp_server) == ["<outbox-1.desk-1@cxdesk>"]
    for result in wrong:  # a setting the admin fixes: the messages wait and retry
        assert not result.ok and not result.permanent
        assert (result.error or "").startswith("SMTP login failed as 'desk'")
        assert "535" in (result.error or "")
    [refused] = missing
    assert not refused.ok and not refused.permanent
    assert "530" in (refused.error or "") and "CXDESK_SMTP_USERNAME" in (refused.error or "")


def test_recipient_refusals_4xx_transient_5xx_permanent(smtp_server: SmtpPeer) -> None:
    smtp_server.refuse = {"busy@example.com": 450, "gone@example.com": 550}
    results = send(
        smtp_server.settings(),
        [mail(1, to="busy@example.com"), mail(2, to="gone@example.com"), mail(3)],
    )

    busy, gone, ok = results
    assert not busy.ok and not busy.permanent and "450" in (busy.error or "")
    assert not gone.ok and gone.permanent and "550" in (gone.error or "")
    assert ok.ok
    assert received_ids(smtp_server) == ["<outbox-3.desk-1@cxdesk>"]
    assert smtp_server.connections == 1  # a refusal does not cost the connection


def test_server_down_then_back(smtp_server: SmtpPeer) -> None:
    smtp_server.stop()
    down = send(smtp_server.settings(), [mail(1), mail(2), mail(3)])
    for result in down:
        assert not result.ok and not result.permanent
        assert result.error == down[0].error
    assert f"SMTP server 127.0.0.1:{smtp_server.port} unreachable" in (down[0].error or "")

    smtp_server.start()
    assert all(r.ok for r in send(smtp_server.settings(), [mail(1), mail(2), mail(3)]))
    assert len(received_ids(smtp_server)) == len(set(received_ids(smtp_server))) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Hello\r\nBcc: everyone@example.com"),
        ("subject", "Hello\nX-Injected: 1"),
        ("to", "zoe@example.com\r\nBcc: everyone@example.com"),
        ("reply_to", "a@example.com\rBcc: b@example.com"),
        ("from_addr", "desk@example.com\u2028Bcc: b@example.com"),
    ],
)
def test_line_break_in_a_header_value_is_refused(
    smtp_server: SmtpPeer, field: str, value: str
) -> None:
    refused, sent = send(smtp_server.settings(), [mail(1, **{field: value}), mail(2)])

    assert not refused.ok and refused.permanent and "line break" in (refused.error or "")
    assert sent.ok
    assert received_ids(smtp_server) == ["<outbox-2.desk-1@cxdesk>"]
    assert b"Bcc" not in smtp_server.received[0].raw


def test_bad_addresses_are_permanent_a_missing_sender_is_not(smtp_server: SmtpPeer) -> None:
    bad_to, two_to = send(
        smtp_server.settings(),
        [mail(1, to="not-an-address"), mail(2, to="a@example.com, b@example.com")],
    )
    [no_sender] = send(smtp_server.settings(mail_from=""), [mail(3)])
    [bad_id] = send(smtp_server.settings(), [mail(4, message_id="outbox-4 at exämple")])

    assert bad_to.permanent and "bad address in To" in (bad_to.error or "")
    assert two_to.permanent
    assert not no_sender.ok and not no_sender.permanent
    assert "CXDESK_MAIL_FROM" in (no_sender.error or "")
    assert not bad_id.permanent and "bad Message-ID" in (bad_id.error or "")
    assert smtp_server.received == []


def test_connection_dropped_mid_message_reconnects_once(smtp_server: SmtpPeer) -> None:
    smtp_server.drop_at = {3}
    results = send(smtp_server.settings(), [mail(n) for n in range(1, 6)])

    assert [r.ok for r in results] == [True, True, False, True, True]
    assert not results[2].permanent and "connection lost" in (results[2].error or "")
    assert received_ids(smtp_server) == [mail(n).message_id for n in (1, 2, 4, 5)]
    assert smtp_server.connections == 2


def test_a_second_drop_leaves_the_rest_for_later(smtp_server: SmtpPeer) -> None:
    smtp_server.drop_at = {2, 3}
    results = send(smtp_server.settings(), [mail(n) for n in range(1, 6)])

    assert [r.ok for r in results] == [True, False, False, False, False]
    assert not any(r.permanent for r in results)
    assert "twice" in (results[4].error or "")
    assert received_ids(smtp_server) == [mail(1).message_id]


def test_slow_server_times_out(smtp_server: SmtpPeer) -> None:
    smtp_server.delay = 1.0
    [result] = send(smtp_server.settings(timeout=0.3), [mail(1)])
    assert not result.ok and not result.permanent
    assert "timed out" in (result.error or "")


def test_mail_settings_env_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    file = {"host": "mail.example.com", "port": 2525, "username": "file-user", "tls": "none"}
    assert MailSettings.load(file) == MailSettings(
        host="mail.example.com", port=2525, username="file-user"
    )
    monkeypatch.setenv("CXDESK_SMTP_HOST", "smtp.env.example")
    monkeypatch.setenv("CXDESK_SMTP_PORT", "587")
    monkeypatch.setenv("CXDESK_SMTP_USERNAME", "env-user")
    monkeypatch.setenv("CXDESK_SMTP_PASSWORD", "env-secret")
    monkeypatch.setenv("CXDESK_SMTP_TLS", "STARTTLS")
    monkeypatch.setenv("CXDESK_MAIL_FROM", "Desk <desk@example.com>")
    assert MailSettings.load(file) == MailSettings(
        host="smtp.env.example",
        port=587,
        username="env-user",
        password="env-secret",
        tls="starttls",
        mail_from="Desk <desk@example.com>",
    )


def test_mail_settings_defaults_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MailSettings.load({}) == MailSettings(host="localhost", port=25, tls="none")
    assert MailSettings.load({"tls": "tls"}).port == 465
    assert MailSettings.load({"tls": "starttls"}).port == 587
    bad_values: list[tuple[dict[str, object], str]] = [
        ({"port": "twenty-five"}, "smtp.port must be a port number"),
        ({"port": 70000}, "between 1 and 65535"),
        ({"tls": "ssl"}, "smtp.tls must be one of none, starttls, tls"),
        ({"password": "x"}, "set CXDESK_SMTP_PASSWORD"),
        ({"hostname": "x"}, "Unknown setting in [smtp]: hostname"),
        ({"timeout": "soon"}, "smtp.timeout must be a number"),
    ]
    for bad, words in bad_values:
        with pytest.raises(DeskError, match=re.escape(words)):
            MailSettings.load(bad)
    monkeypatch.setenv("CXDESK_SMTP_PORT", "25x")
    with pytest.raises(DeskError, match="'25x'"):
        MailSettings.load({"port": 25})


# -- SMS: Twilio's contract (Prism) ------------------------------------------------------------


def spec_example_sid() -> str:
    spec = json.loads(TWILIO_SPEC.read_text(encoding="utf-8"))
    create = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]
    examples = create["responses"]["201"]["content"]["application/json"]["examples"]
    sid: str = examples["create"]["value"]["sid"]
    return sid


def test_sms_accepted_by_twilio_contract(twilio_mock: str) -> None:
    result = send_sms(twilio_settings(twilio_mock), SmsOut(7, "+14155552345", "Bonjour Zoë 👍"))
    assert result == DeliveryResult(7, True, spec_example_sid(), None, False)
    assert (result.provider_id or "").startswith("SM")


def test_sms_batch_with_messaging_service(twilio_mock: str) -> None:
    settings = twilio_settings(twilio_mock, from_number="", messaging_service_sid="MG" + "a" * 32)
    results = send_sms_batch(settings, [SmsOut(n, "+14155552345", f"hi {n}") for n in (1, 2, 3)])
    assert [r.ok for r in results] == [True, True, True]


def test_sms_refused_by_twilio_contract_is_permanent(twilio_mock: str) -> None:
    bad_service = twilio_settings(twilio_mock, from_number="", messaging_service_sid="MG-nope")
    [refused] = send_sms_batch(bad_service, [SmsOut(1, "+14155552345", "hi")])
    assert not refused.ok and refused.permanent
    assert (refused.error or "").startswith("Twilio HTTP 422: ")
    assert "MessagingServiceSid must match pattern" in (refused.error or "")

    bad_account = twilio_settings(twilio_mock, account_sid="ACnot-an-account")
    [refused] = send_sms_batch(bad_account, [SmsOut(2, "+14155552345", "hi")])
    assert refused.permanent and "accountsid" in (refused.error or "")


# -- SMS: statuses the contract does not define (a local stub) ---------------------------------


def test_sms_request_goes_to_the_configured_url(twilio_stub: TwilioStub) -> None:
    settings = twilio_settings(twilio_stub.url + "/")
    result = send_sms(settings, SmsOut(5, "+14155552345", "Votre expert: Łukasz"))

    [request] = twilio_stub.requests
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_TEST_ACCOUNT_SID}/Messages.json"
    token = base64.b64encode(f"{TWILIO_TEST_ACCOUNT_SID}:test-token".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {token}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "To": "+14155552345",
        "From": settings.from_number,
        "Body": "Votre expert: Łukasz",
    }
    assert result == DeliveryResult(5, True, "SM" + "0" * 32, None, False)


def test_sms_gate_runs_before_each_request_and_a_refusal_stops_the_batch(
    twilio_stub: TwilioStub,
) -> None:
    messages = [SmsOut(n, f"+1415555000{n}", f"Text {n}") for n in range(1, 4)]
    gates: list[tuple[int, int]] = []

    def gate(outbox_id: int) -> bool:
        gates.append((outbox_id, len(twilio_stub.requests)))
        return outbox_id != 2

    results = send_sms_batch(twilio_settings(twilio_stub.url), messages, before_send=gate)
    assert gates == [(1, 0), (2, 1)]
    assert [(r.outbox_id, r.ok) for r in results] == [(1, True)]
    assert [r.form["Body"] for r in twilio_stub.requests] == ["Text 1"]


def test_sms_429_is_transient_and_holds_the_rest(twilio_stub: TwilioStub) -> None:
    twilio_stub.replies = [twilio_error(429, 20429, "Too Many Requests")]
    results = send_sms_batch(
        twilio_settings(twilio_stub.url), [SmsOut(n, "+14155552345", "hi") for n in (1, 2)]
    )

    assert [(r.ok, r.permanent) for r in results] == [(False, False), (False, False)]
    assert results[0].error == "Twilio error 20429 (HTTP 429): Too Many Requests"
    assert (results[1].error or "").startswith("not tried after: Twilio error 20429")
    assert len(twilio_stub.requests) == 1


def test_sms_5xx_is_transient_4xx_permanent_401_transient(twilio_stub: TwilioStub) -> None:
    twilio_stub.replies = [
        twilio_error(500, 20500, "Internal Server Error"),
        twilio_error(400, 21211, "The 'To' number +1555 is not a valid phone number."),
        twilio_error(401, 20003, "Authenticate"),
    ]
    results = send_sms_batch(
        twilio_settings(twilio_stub.url), [SmsOut(n, "+1555", "hi") for n in (1, 2, 3, 4)]
    )

    server, invalid, login, ok = results
    assert not server.ok and not server.permanent and "HTTP 500" in (server.error or "")
    assert invalid.permanent and invalid.error == (
        "Twilio error 21211 (HTTP 400): The 'To' number +1555 is not a valid phone number."
    )
    assert not login.permanent
    assert login.error == "Twilio login failed: Twilio error 20003 (HTTP 401): Authenticate"
    assert ok.ok
    assert len(twilio_stub.requests) == 4


def test_sms_refuses_empty_number_or_body_without_asking(twilio_stub: TwilioStub) -> None:
    results = send_sms_batch(
        twilio_settings(twilio_stub.url),
        [SmsOut(1, "", "hi"), SmsOut(2, "+14155552345", "  "), SmsOut(3, "+1\n555", "hi")],
    )
    assert all(r.permanent and (r.error or "").startswith("refused:") for r in results)
    assert twilio_stub.requests == []


def test_sms_api_unreachable_is_transient() -> None:
    settings = twilio_settings("http://127.0.0.1:9")
    first, second = send_sms_batch(settings, [SmsOut(1, "+1555", "a"), SmsOut(2, "+1555", "b")])
    assert not first.permanent and not second.permanent
    assert (first.error or "").startswith("Twilio API http://127.0.0.1:9 unreachable: [Errno ")
    assert "Connection refused" in (first.error or "")
    assert second.error == f"not tried after: {first.error}"


def test_sms_not_configured_is_a_desk_error() -> None:
    with pytest.raises(DeskError) as raised:
        send_sms_batch(SmsSettings(account_sid="AC1"), [SmsOut(1, "+1555", "hi")])
    assert str(raised.value) == (
        "SMS is not configured: set TWILIO_AUTH_TOKEN, "
        "CXDESK_SMS_FROM (or CXDESK_SMS_MESSAGING_SERVICE_SID)"
    )


def test_sms_settings_env_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for bad, words in [
        ({"auth_token": "x"}, "set TWILIO_AUTH_TOKEN"),
        ({"api_url": "ftp://x"}, "twilio.api_url must be an http"),
        ({"sid": "x"}, r"Unknown setting in \[twilio\]: sid"),
    ]:
        with pytest.raises(DeskError, match=words):
            SmsSettings.load(bad)
    file = {"account_sid": "ACfile", "from_number": "+15550001", "api_url": "http://proxy:8080/"}
    assert SmsSettings.load(file) == SmsSettings(
        account_sid="ACfile", from_number="+15550001", api_url="http://proxy:8080"
    )
    assert SmsSettings.load({}).api_url == "https://api.twilio.com"
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACenv")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "env-token")
    monkeypatch.setenv("CXDESK_SMS_MESSAGING_SERVICE_SID", "MGenv")
    monkeypatch.setenv("CXDESK_TWILIO_API_URL", "http://127.0.0.1:4010")
    assert SmsSettings.load(file) == SmsSettings(
        account_sid="ACenv",
        auth_token="env-token",
        from_number="+15550001",
        messaging_service_sid="MGenv",
        api_url="http://127.0.0.1:4010",
    )
