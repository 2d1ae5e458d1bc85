"""Text messages from customers: Twilio's signed webhook on the real survey server (waitress),
STOP and START, and no SMS to a number that opted out, at queue time or at send time (through
the recording Twilio, whose requests Prism checks). On SQLite and PostgreSQL.

Requests are signed as Twilio signs them (``RequestValidator.compute_signature`` with the
test auth token) for the desk's public URL, ``PUBLIC``, while they reach the server on
127.0.0.1: the server checks them against its configured public address, as it would behind
a proxy, never against the Host it is reached at.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import col, select
from twilio.request_validator import RequestValidator

from cxdesk.config import load_settings
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.outbox import LEASE, claim_due, record_then_start
from cxdesk.engine.staleness import IN_DOUBT, claim_fresh
from cxdesk.engine.worker import DeliveryWorker
from cxdesk.engine.workflows import save_workflow
from cxdesk.store import inbound
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_status, get_user, set_setting
from cxdesk.store.models import (
    AddressFlag,
    Comment,
    CommentKind,
    Event,
    InboundMessage,
    OutboxMessage,
    Team,
    Ticket,
    utcnow,
)
from cxdesk.store.sms_optout import keyword_of, opt_out
from cxdesk.store.surveys import submit_response
from cxdesk.store.tickets import change_status, get_ticket
from cxdesk.web.settings import ServerSettings
from cxdesk.web.twilio_sms import EMPTY_TWIML
from tests.cli_helpers import table_counts
from tests.desk import build_small_desk
from tests.test_delivery_recovery import twilio_variables_for
from tests.twilio_recorder import TwilioRecorder
from tests.web_helpers import Page, fetch, raw_status, running_server

TOKEN = "test-token"
PUBLIC = "https://desk.example.org"
WEBHOOK = f"{PUBLIC}/twilio/sms"
ADA = "+14155552671"
STRANGER = "+14155550199"
ACCOUNT = "AC" + "0" * 32
FUZZ_SIDS = itertools.count(1000)


def sid(n: int) -> str:
    return f"SM{n:032x}"


def form(n: int, sender: str, body: str, **extra: str) -> dict[str, str]:
    """The fields Twilio posts for one inbound message (a subset: what the desk reads)."""
    return {"MessageSid": sid(n), "SmsSid": sid(n), "AccountSid": ACCOUNT, "From": sender,
            "To": "+15005550006", "Body": body, "NumMedia": "0", **extra}  # fmt: skip


def signed(fields: Mapping[str, str], *, url: str = WEBHOOK, token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, dict(fields))}


def post(base: str, fields: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Page:
    return fetch(f"{base}/twilio/sms", fields, signed(fields) if headers is None else headers)


@pytest.fixture
def desk(engine: Engine) -> Engine:
    """The small desk, inbound texts to team Solo, a check-in ticket for Ada with her phone as
    typed at the desk, and a workflow texting the customer when their ticket changes status."""
    build_small_desk(engine)
    with unit_of_work(engine) as s:
        set_setting(s, inbound.INBOUND_TEAM_SETTING, "Solo")
        submit_response(s, actor=get_user(s, "vera"), survey_name="checkin", answers={
            "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
            "phone": "(415) 555-2671", "product": "360"})  # fmt: skip
        save_workflow(
            s,
            actor=None,
            name="Tell the customer",
            event="ticket.status_changed",
            tasks=[
                {
                    "type": "send_sms",
                    "to": "${tck://Field/customerPhone}",
                    "body": "${tck://Field/key} is now ${tck://Field/status}",
                }
            ],  # fmt: skip
        )
    return engine


@pytest.fixture
def server(desk: Engine) -> Iterator[str]:
    with running_server(desk, ServerSettings(public_url=PUBLIC, twilio_auth_token=TOKEN)) as base:
        yield base


def ada_ticket(engine: Engine) -> Ticket:
    with read_session(engine) as s:
        return s.exec(select(Ticket).where(Ticket.customer_phone == ADA)).one()


def comments(engine: Engine, ticket_id: int | None) -> list[Comment]:
    with read_session(engine) as s:
        return list(s.exec(select(Comment).where(Comment.ticket_id == ticket_id)).all())


def event_kinds(engine: Engine, ticket_id: int | None) -> list[str]:
    with read_session(engine) as s:
        events = s.exec(select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id)))
        return [e.kind for e in events]


def set_status(engine: Engine, key: str, status: str) -> None:
    with unit_of_work(engine) as s:
        change_status(s, None, get_ticket(s, key), get_status(s, status))


def sms_rows(engine: Engine) -> list[OutboxMessage]:
    with read_session(engine) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms"))
        return list(rows.all())


# -- landing on tickets ------------------------------------------------------------------------


def test_a_signed_text_lands_on_the_customers_open_ticket_once(desk: Engine, server: str) -> None:
    ticket = ada_ticket(desk)
    fields = form(1, ADA, "Is the\r\nroom 4B?")
    for _ in range(2):  # Twilio sends it again: nothing more
        page = post(server, fields)
        assert (page.status, page.html) == (200, EMPTY_TWIML)
        assert page.headers["Content-Type"].startswith("text/xml")
    [comment] = comments(desk, ticket.id)
    assert (comment.kind, comment.channel, comment.sender, comment.body) == (
        CommentKind.customer, "sms", ADA, "Is the\nroom 4B?"
    )  # fmt: skip
    assert event_kinds(desk, ticket.id).count("message.received") == 1
    with read_session(desk) as s:
        [received] = s.exec(select(InboundMessage)).all()
        assert (received.message_id, received.outcome, received.ticket_id) == (
            sid(1), "added", ticket.id
        )  # fmt: skip
        assert received.raw is not None and b"Body=Is+the" in received.raw


def test_a_strangers_text_opens_a_ticket_in_the_inbound_team(desk: Engine, server: str) -> None:
    assert post(server, form(2, STRANGER, "My license key\nis refused")).status == 200
    with read_session(desk) as s:
        ticket = s.exec(select(Ticket).where(Ticket.customer_phone == STRANGER)).one()
        team = s.get(Team, ticket.team_id)
        assert team is not None
        assert (ticket.title, ticket.source, ticket.channel, team.name) == (
            "My license key", "sms", "sms", "Solo"
        )  # fmt: skip
    [comment] = comments(desk, ticket.id)
    assert comment.body == "My license key\nis refused"
    other = "+14155550198"
    assert post(server, form(12, other, "Line\u2028separated\r\nsecond")).status == 200
    with read_session(desk) as s:
        ticket = s.exec(select(Ticket).where(Ticket.customer_phone == other)).one()
    assert ticket.title == "Line\\u2028separated"
    assert [c.body for c in comments(desk, ticket.id)] == ["Line\\u2028separated\nsecond"]


def test_mms_files_are_listed_not_downloaded_and_control_characters_kept_visible(
    desk: Engine, server: str
) -> None:
    media = "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM1/Media/ME1"
    fields = form(3, ADA, "screen\x1b[2J shot", NumMedia="1", MediaUrl0=media,
                  MediaContentType0="image/jpeg")  # fmt: skip
    assert post(server, fields).status == 200
    [comment] = comments(desk, ada_ticket(desk).id)
    assert comment.body.startswith("screen\\x1b[2J shot\n[1 MMS file not downloaded")
    assert comment.body.endswith(f"- image/jpeg {media}")


def test_a_short_code_or_named_sender_is_recorded_not_put_on_a_ticket(
    desk: Engine, server: str
) -> None:
    before = table_counts(desk)
    for n, sender in enumerate(("72345", "ACME\u202eBank")):
        assert post(server, form(50 + n, sender, "Your code is 1234")).status == 200
    after = table_counts(desk)
    assert {k: after[k] - before[k] for k in after if after[k] != before[k]} == {
        "inbound_message": 2
    }
    with read_session(desk) as s:
        outcomes = s.exec(select(InboundMessage.outcome, InboundMessage.sender)).all()
    assert sorted(outcomes) == [("refused", "72345"), ("refused", "ACME\\u202eBank")]


def test_a_text_after_resolution_reopens_the_ticket(desk: Engine, server: str) -> None:
    ticket = ada_ticket(desk)
    assert ticket.key is not None
    set_status(desk, ticket.key, "resolved")
    assert post(server, form(4, ADA, "It broke again")).status == 200
    assert ada_ticket(desk).status == "open"
    assert [c.body for c in comments(desk, ticket.id)] == ["It broke again"]


# -- refused requests --------------------------------------------------------------------------


def test_unsigned_forged_or_misaddressed_texts_are_403_and_store_nothing(
    desk: Engine, server: str
) -> None:
    fields = form(5, ADA, "Hello")
    before = table_counts(desk)
    attempts = {
        "no signature": {},
        "another token": signed(fields, token="not-the-token"),
        "the Host's URL": signed(fields, url=f"{server}/twilio/sms"),
        "another body": signed({**fields, "Body": "Hi"}),
        "a captured signature, another sid": signed(form(4, ADA, "Hello")),
        "empty signature": {"X-Twilio-Signature": ""},
    }
    for what, headers in attempts.items():
        assert post(server, fields, headers).status == 403, what
    assert table_counts(desk) == before


def test_no_auth_token_configured_refuses_every_text(desk: Engine) -> None:
    fields = form(6, ADA, "Hello")
    before = table_counts(desk)
    with running_server(desk, ServerSettings(public_url=PUBLIC)) as base:
        assert post(base, fields).status == 403
    assert table_counts(desk) == before


def test_odd_requests_get_4xx(desk: Engine, server: str) -> None:
    host = server.removeprefix("http://")
    before = table_counts(desk)
    signature = signed(form(7, ADA, "x"))["X-Twilio-Signature"]

    def raw(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> int:
        head = (f"POST /twilio/sms HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n")  # fmt: skip
        return raw_status(server, head.encode() + body)

    assert raw(b"Body=" + b"a" * 70_000) == 413
    assert raw(b"Body=%ff%fe") == 400
    assert raw("&".join(f"f{n}=1" for n in range(500)).encode()) == 400
    assert raw(b"{}", "application/json") == 415
    assert fetch(f"{server}/twilio/sms").status == 405
    for fields in (
        {"From": ADA, "Body": "no sid"},
        form(8, ADA, "x", NumMedia="999"),
        form(9, ADA, "x", NumMedia="-1"),
        {**form(10, ADA, "x"), "MessageSid": "SM../../etc"},
    ):
        assert post(server, fields).status == 400, fields
    assert table_counts(desk) == before


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.dictionaries(st.sampled_from(["From", "Body", "NumMedia", "MessageSid",
                                              "MediaUrl0", "MediaContentType0", "To"]),
                              st.text(max_size=60), min_size=1))  # fmt: skip
def test_signed_forms_with_any_values_never_get_a_5xx(server: str, values: dict[str, str]) -> None:
    """Even a form signed with the desk's token (the worst case) holding anything is a 2xx or a
    4xx: a sender that is not a phone, a Body of control characters, odd media."""
    fields = {**form(next(FUZZ_SIDS), ADA, "x"), **values}
    status = post(server, fields).status
    assert status == 200 or 400 <= status < 500, (status, fields)


# -- STOP and START ----------------------------------------------------------------------------


def test_keywords_are_the_whole_message_in_any_case() -> None:
    assert [keyword_of(t) for t in (" stop ", "Quit", "STOPALL", "optout", "start", "Yes")] == [
        "out", "out", "out", "out", "in", "in"
    ]  # fmt: skip
    assert [keyword_of(t) for t in ("stop it", "please STOP", "", "STOP!")] == [None] * 4


def test_stop_suppresses_texts_queued_later_and_skips_those_queued_before_until_start(
    desk: Engine, server: str, twilio_recorder: TwilioRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ada_ticket(desk).key
    assert key is not None
    set_status(desk, key, "open")  # queued before the STOP arrives
    [queued] = sms_rows(desk)
    assert queued.to_addr == ADA

    assert post(server, form(20, ADA, " Stop ")).status == 200
    with read_session(desk) as s:
        flag = s.get(AddressFlag, ("sms", ADA, "opted_out"))
        assert flag is not None and flag.reason.startswith("STOP received")
    ticket_id = ada_ticket(desk).id
    assert comments(desk, ticket_id) == []  # a keyword is no message
    assert "message.opted_out" in event_kinds(desk, ticket_id)

    set_status(desk, key, "Follow up later")  # after STOP: not queued
    assert len(sms_rows(desk)) == 1
    with read_session(desk) as s:
        suppressed = s.exec(select(Event).where(Event.kind == "message.suppressed")).one()
        assert suppressed.detail is not None and "opted out of SMS (STOP" in suppressed.detail

    for name, value in twilio_variables_for(twilio_recorder.url).items():
        monkeypatch.setenv(name, value)
    report = DeliveryWorker(desk, load_settings()).run_once()
    assert (report.results, report.skipped) == ({"sent": 0, "failed": 0}, 1)
    assert "1 skipped (number opted out)" in report.line()
    assert twilio_recorder.bodies() == []
    [row] = sms_rows(desk)
    assert row.status == "skipped" and "opted out of SMS" in (row.last_error or "")

    assert post(server, form(21, ADA, "START")).status == 200
    assert "message.opted_in" in event_kinds(desk, ticket_id)
    assert comments(desk, ticket_id) == []
    set_status(desk, key, "open")
    report = DeliveryWorker(desk, load_settings()).run_once()
    assert report.results == {"sent": 1, "failed": 0}
    assert twilio_recorder.bodies() == [f"{key} is now open"]


def test_an_sms_in_doubt_to_a_number_that_opted_out_is_skipped_saying_it_may_have_gone(
    desk: Engine,
) -> None:
    key = ada_ticket(desk).key
    assert key is not None
    set_status(desk, key, "open")
    held = claim_due(desk, channel="sms")
    [row] = held.messages
    assert record_then_start(desk, held, [], row.id) == ([], True)  # and the deliverer died
    with transaction(desk) as s:
        assert opt_out(s, ADA, reason="STOP received")
    later = claim_fresh(desk, channel="sms", now=utcnow() + LEASE + timedelta(seconds=1))
    assert (later.messages, later.skipped, later.stale) == ([], 1, 0)
    [row] = sms_rows(desk)
    assert row.status == "skipped" and (row.last_error or "").endswith(IN_DOUBT)


def test_yes_is_a_message_unless_the_number_opted_out(desk: Engine, server: str) -> None:
    ticket_id = ada_ticket(desk).id
    assert post(server, form(30, ADA, "yes")).status == 200
    assert [c.body for c in comments(desk, ticket_id)] == ["yes"]
    with transaction(desk) as s:
        assert s.exec(select(AddressFlag)).all() == []


def test_the_server_checks_against_the_desks_public_url_and_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CXDESK_SURVEY_URL", f"{PUBLIC}/")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    limits = ServerSettings.from_desk(load_settings())
    assert (limits.public_url, limits.twilio_auth_token) == (PUBLIC, TOKEN)
    assert TOKEN not in repr(limits)
    assert f"Twilio posts to {WEBHOOK}" in limits.twilio_sms_line
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    assert ServerSettings.from_desk(load_settings()).twilio_sms_line.startswith(
        "Text messages: off"
    )


def test_a_text_waits_for_an_experts_save_of_its_ticket_rather_than_failing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL (SQLite takes its write lock at BEGIN): a text whose ticket an expert saves
    between the text's read and its write waits for that save (the row lock) and lands; without
    the lock its write found another version and the whole message was refused (Twilio does
    not send an inbound text again)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises write transactions at BEGIN IMMEDIATE")
    import threading

    from cxdesk.store import sms_inbound
    from cxdesk.store.tickets import update_ticket
    from tests.test_views import make_ticket
    from tests.threads import held_in, until_waiting_on_lock

    build_small_desk(engine)
    key = make_ticket(engine, "Login", "360", customer_phone="+14155552671")
    held, read, release = held_in("text", sms_inbound.latest_ticket)
    monkeypatch.setattr(sms_inbound, "latest_ticket", held)
    errors: list[BaseException] = []

    def text_in() -> None:
        try:
            with unit_of_work(engine) as s:
                message = sms_inbound.InboundSms(f"SM{1:032d}", "+14155552671", "hi")
                sms_inbound.receive_sms(s, message)
        except BaseException as error:  # told to the test below
            errors.append(error)

    def expert_saves() -> None:
        with unit_of_work(engine) as s:
            update_ticket(s, actor=get_user(s, "maya"), key=key, comment="calling back",
                          changes={"priority": "high"})  # fmt: skip

    first = threading.Thread(target=text_in, name="text")
    first.start()
    assert read.wait(120)
    second = threading.Thread(target=expert_saves, name="expert")
    second.start()
    until_waiting_on_lock(engine, second, "transactionid")  # the save waits on the row lock
    release.set()
    first.join(120)
    second.join(120)
    assert errors == []
    with read_session(engine) as s:
        after = get_ticket(s, key)
        bodies = s.exec(select(Comment.body).where(Comment.ticket_id == after.id)).all()
    assert after.priority == "high" and "hi" in bodies
