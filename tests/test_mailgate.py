"""One email in (``engine.inbound.mailgate.receive_email``): routed to its ticket once, with
the customer's new text and files, or refused with one line and nothing stored."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from cxdesk.engine.inbound.mailgate import RefusedMail, receive_email
from cxdesk.seed import SeedProblems, apply_seed
from cxdesk.store import inbound
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import get_status
from cxdesk.store.models import (
    Attachment,
    Comment,
    CommentKind,
    Event,
    InboundMessage,
    Team,
    Ticket,
)
from cxdesk.store.tickets import change_status, get_ticket
from tests.cli_helpers import table_counts
from tests.mail_helpers import open_ticket_for, our_message_id, sample
from tests.threads import at_once


@pytest.fixture
def desk(inbound_desk: Engine) -> Engine:
    return inbound_desk


def _customer_comments(engine: Engine, key: str) -> list[Comment]:
    with read_session(engine) as s:
        ticket = get_ticket(s, key)
        return list(
            s.exec(
                select(Comment)
                .where(Comment.ticket_id == ticket.id, Comment.kind == CommentKind.customer)
                .order_by(col(Comment.id))
            )
        )


def _ticket_events(engine: Engine, key: str, kind: str) -> list[Event]:
    with read_session(engine) as s:
        ticket = get_ticket(s, key)
        return list(s.exec(select(Event).where(Event.ticket_id == ticket.id, Event.kind == kind)))


REPLIES = [
    ("thunderbird_reply.eml", "ann@example.com",
     "Thank you, the export works now. The CSV opens fine in Excel, and the numbers match "
     "the dashboard.\n\n"
     "One more thing: can I schedule it weekly?"),
    ("outlook_reply.eml", "Bob.Smith@contoso.example",
     "The widget shows data again after the filter change, thank you."),
    ("gmail_reply.eml", "zoe.novak@gmail.example",
     "It happened again this morning, the counter is stuck at 500."),
]  # fmt: skip


@pytest.mark.parametrize(("name", "customer", "text"), REPLIES, ids=[r[0] for r in REPLIES])
def test_a_reply_from_an_email_client_lands_on_its_ticket_as_the_new_text_once(
    desk: Engine, name: str, customer: str, text: str
) -> None:
    key = open_ticket_for(desk, customer.lower())
    raw = sample(name, KEY=key, OUR_ID=our_message_id(desk, key))
    first = receive_email(desk, raw)
    assert (first.outcome, first.ticket_key, first.detail) == (
        "commented", key, f"{key}: added to the conversation"
    )  # fmt: skip
    before = table_counts(desk)
    again = receive_email(desk, raw)
    assert (again.outcome, again.detail) == ("duplicate", f"duplicate: already handled ({key})")
    assert table_counts(desk) == before
    [comment] = _customer_comments(desk, key)
    assert (comment.body, comment.sender, comment.channel) == (text, customer, "email")
    with read_session(desk) as s:
        record = s.exec(select(InboundMessage)).one()
        assert (record.outcome, record.ticket_id, record.comment_id) == (
            "commented", comment.ticket_id, comment.id
        )  # fmt: skip
        assert record.raw == raw and record.may_answer


def test_a_stranger_opens_a_ticket_in_the_inbound_team(desk: Engine) -> None:
    received = receive_email(desk, sample("stranger_new_question.eml"))
    assert received.outcome == "opened"
    assert (
        received.detail
        == f"{received.ticket_key}: new ticket in team Solo from zoe.novak@gmail.example"
    )
    assert received.ticket_key is not None
    with read_session(desk) as s:
        ticket = get_ticket(s, received.ticket_key)
        team = s.get(Team, ticket.team_id)
        assert team is not None and team.name == "Solo"
        assert (ticket.customer_name, ticket.customer_email, ticket.title, ticket.source) == (
            "Zoë Novak", "zoe.novak@gmail.example", "Question about response quotas", "email"
        )  # fmt: skip
    [comment] = _customer_comments(desk, received.ticket_key)
    assert comment.body.startswith("Hello,\n\nOur survey stopped collecting responses at 500.")


def test_the_subject_key_routes_mail_from_the_tickets_customer_only(desk: Engine) -> None:
    key = open_ticket_for(desk, "ann@example.com")
    unsigned = "<f00d@mail.example.com>"
    ann = receive_email(desk, sample("thunderbird_reply.eml", KEY=key, OUR_ID=unsigned))
    assert (ann.outcome, ann.ticket_key) == ("commented", key)
    other = receive_email(desk, sample("forged_reply.eml", KEY=key, FORGED_ID=unsigned))
    assert other.outcome == "opened" and other.ticket_key != key
    assert len(_customer_comments(desk, key)) == 1
    assert other.ticket_key is not None
    [comment] = _customer_comments(desk, other.ticket_key)
    assert comment.sender == "mallory@attacker.example"


def test_a_forged_message_id_never_attaches_mail_to_another_customers_ticket(desk: Engine) -> None:
    anns = open_ticket_for(desk, "ann@example.com")
    mallorys = open_ticket_for(desk, "mallory@attacker.example")
    real = our_message_id(desk, mallorys)  # a real id of ours, for Mallory's own ticket
    anns_number, mallorys_number = anns.split("-")[1], mallorys.split("-")[1]
    forged = real.replace(f"<cx.{mallorys_number}.", f"<cx.{anns_number}.")
    assert forged != real
    received = receive_email(desk, sample("forged_reply.eml", KEY=anns, FORGED_ID=forged))
    assert received.outcome == "opened"
    assert received.ticket_key not in (anns, mallorys)
    assert _customer_comments(desk, anns) == []
    assert _ticket_events(desk, anns, "message.received") == []


def test_a_reply_reopens_a_recently_resolved_ticket_and_follows_up_a_closed_one(
    desk: Engine,
) -> None:
    anns = open_ticket_for(desk, "ann@example.com")
    bobs = open_ticket_for(desk, "bob.smith@contoso.example", title="Dashboard widget is empty")
    with transaction(desk) as s:
        change_status(s, None, get_ticket(s, anns), get_status(s, "resolved"))
        change_status(s, None, get_ticket(s, bobs), get_status(s, "closed"))
    reopened = receive_email(
        desk, sample("thunderbird_reply.eml", KEY=anns, OUR_ID=our_message_id(desk, anns))
    )
    assert (reopened.outcome, reopened.ticket_key) == ("reopened", anns)
    assert reopened.detail == f"{anns}: reopened, added to the conversation"
    followed = receive_email(
        desk, sample("outlook_reply.eml", KEY=bobs, OUR_ID=our_message_id(desk, bobs))
    )
    assert followed.outcome == "followed_up"
    assert followed.ticket_key not in (None, bobs)
    assert followed.detail == f"{followed.ticket_key}: new ticket following {bobs} (closed)"
    with read_session(desk) as s:
        assert get_ticket(s, anns).status == "open"
        old, new = get_ticket(s, bobs), get_ticket(s, str(followed.ticket_key))
        assert old.status == "closed"
        assert (new.follows_id, new.team_id, new.title) == (
            old.id, old.team_id, "Dashboard widget is empty"
        )  # fmt: skip
    assert _customer_comments(desk, bobs) == []
    [comment] = _customer_comments(desk, str(followed.ticket_key))
    assert comment.body == "The widget shows data again after the filter change, thank you."


def test_a_reply_long_after_the_resolution_follows_up(desk: Engine) -> None:
    key = open_ticket_for(desk, "ann@example.com")
    with transaction(desk) as s:
        ticket = get_ticket(s, key)
        change_status(s, None, ticket, get_status(s, "resolved"))
        assert ticket.resolved_at is not None
        ticket.resolved_at -= timedelta(days=inbound.DEFAULT_REOPEN_DAYS + 1)
    received = receive_email(desk, sample("thunderbird_reply.eml", KEY=key, OUR_ID="<x@y>"))
    assert received.outcome == "followed_up"
    with read_session(desk) as s:
        assert get_ticket(s, key).status == "resolved"


CONTENT = [
    ("html_only.eml", "Priya Raman", "Logo upload fails",
     "Hi team,\n\nUploading our logo in Look & Feel fails with \"invalid file\".\n"
     "It is a 120 KB PNG.\n\n• Browser: Firefox\n\n• Theme: Classic\n\n"
     "See our logo <https://fabrikam.example/logo.png>."),
    ("iso_8859_1.eml", "Jürgen Müller", "Umfrage lässt sich nicht öffnen",
     "Guten Tag,\n\ndie Umfrage lässt sich seit heute früh nicht mehr öffnen."),
    ("shift_jis.eml", "山田 太郎", "回答のダウンロード",
     "お世話になっております。\nアンケートの回答がダウンロードできません。\n\n"
     "よろしくお願いいたします。\n山田"),
    ("unknown_charset.eml", "Sam Lee", "Café survey",
     "The café survey shows “blank” pages since this morning."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "customer", "title", "text"), CONTENT, ids=[c[0] for c in CONTENT]
)
def test_html_and_every_charset_arrive_as_readable_text(
    desk: Engine, name: str, customer: str, title: str, text: str
) -> None:
    received = receive_email(desk, sample(name))
    assert received.outcome == "opened" and received.ticket_key is not None
    with read_session(desk) as s:
        ticket = get_ticket(s, received.ticket_key)
        assert (ticket.customer_name, ticket.title) == (customer, title)
    [comment] = _customer_comments(desk, received.ticket_key)
    assert comment.body == text
    assert "<" not in comment.body.replace("<https://", "")  # no markup kept
    assert "document.cookie" not in comment.body and "color: red" not in comment.body


def test_an_attachment_within_the_limits_is_kept_and_a_refused_one_is_listed(
    desk: Engine,
) -> None:
    raw = sample("attachments.eml")
    received = receive_email(desk, raw)
    assert received.ticket_key is not None
    assert received.detail.endswith("; 1 attachment(s) not kept (listed on the ticket)")
    [comment] = _customer_comments(desk, received.ticket_key)
    assert comment.body.startswith("Here is the screenshot of the error, and the tool our IT sent.")
    assert "\n\n[Attachment not kept: fix-tool.exe: file type not allowed" in comment.body
    with read_session(desk) as s:
        [kept] = s.exec(select(Attachment).where(Attachment.comment_id == comment.id)).all()
    assert (kept.filename, kept.content_type, kept.size) == (
        "error screenshot.png",
        "image/png",
        69,
    )
    assert kept.content.startswith(b"\x89PNG\r\n\x1a\n")
    [refused] = _ticket_events(desk, received.ticket_key, "attachment.refused")
    assert refused.to_value == "fix-tool.exe"
    assert refused.detail is not None and refused.detail.startswith("file type not allowed")


def test_files_past_the_desks_count_and_size_are_listed_not_dropped(desk: Engine) -> None:
    message = EmailMessage()
    message["From"] = "ann@example.com"
    message["Subject"] = "Logs"
    message.set_content("All the logs.")
    for n in range(6):
        message.add_attachment(f"log {n}".encode(), "text", "plain", filename=f"log{n}.txt")
    message.add_attachment(b"x" * (600 * 1024), "application", "pdf", filename="big.pdf")
    received = receive_email(desk, message.as_bytes())
    assert received.ticket_key is not None
    [comment] = _customer_comments(desk, received.ticket_key)
    with read_session(desk) as s:
        kept = s.exec(select(Attachment.filename).where(Attachment.comment_id == comment.id))
        assert sorted(kept) == [f"log{n}.txt" for n in range(5)]
    refused = _ticket_events(desk, received.ticket_key, "attachment.refused")
    assert {(e.to_value, e.detail) for e in refused} == {
        ("log5.txt", "more than 5 files in one message"),
        ("big.pdf", "is 600 KB; the limit is 500 KB"),
    }
    assert "[Attachment not kept: big.pdf: is 600 KB; the limit is 500 KB]" in comment.body


def test_control_characters_are_stored_as_visible_escapes(desk: Engine) -> None:
    raw = (b"From: \"Eve\x1b[31m\" <eve@example.com>\nSubject: Hi\x1b]52;c;Zm9v\x07\n\n"
           b"Clear\x1b[2J this\rline\n")  # fmt: skip
    received = receive_email(desk, raw)
    assert received.ticket_key is not None
    with read_session(desk) as s:
        ticket = get_ticket(s, received.ticket_key)
        assert "\x1b" not in ticket.title + ticket.customer_name
    [comment] = _customer_comments(desk, received.ticket_key)
    assert comment.body == "Clear\\x1b[2J this\nline"


def _nested(depth: int) -> bytes:
    levels = "".join(
        f'Content-Type: multipart/mixed; boundary="b{n}"\n\n--b{n}\n' for n in range(depth)
    )
    return f"From: a@example.com\n{levels}Content-Type: text/plain\n\nhi\n".encode()


def _parts(count: int) -> bytes:
    parts = "".join(f"--b\nContent-Type: text/plain\n\npart {n}\n" for n in range(count))
    return (
        f"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n{parts}--b--\n".encode()
    )


GARBAGE = [
    (b"", "empty input"),
    (b"   \r\n", "empty input"),
    (sample("not_mail.bin"), "not an email message: it has no headers"),
    (sample("no_sender.eml"), "no usable sender: From 'undisclosed-recipients:;'"),
    (b"Subject: hello\n\nno sender here\n", "no sender: the message has no From header"),
    (b"From: <not an address>\n\nhi\n", "no usable sender"),
    (bytes(range(256)) * 40, "not an email message"),
    (_nested(31), "parts nested more than 30 levels deep"),  # 600: the stdlib's recursion fails
    (_nested(3000), "not an email message (RecursionError)"),
    (_parts(201), "more than 200 parts"),
]


@pytest.mark.parametrize(("raw", "reason"), GARBAGE, ids=range(len(GARBAGE)))
def test_what_is_not_mail_is_refused_with_one_line_and_nothing_stored(
    desk: Engine, raw: bytes, reason: str
) -> None:
    before = table_counts(desk)
    with pytest.raises(RefusedMail) as refused:
        receive_email(desk, raw)
    assert reason in str(refused.value) and "\n" not in str(refused.value)
    assert table_counts(desk) == before


def test_nul_bytes_in_every_header_and_the_body_are_stored_escaped(desk: Engine) -> None:
    raw = (b"From: \"A\x00nn\" <ann@example.com>\nSubject: S\x00ubject\n"
           b"Message-ID: <a\x00b@example.com>\nContent-Type: text/plain; charset=\"utf\x00-8\"\n"
           b"\nBo\x00dy\n")  # fmt: skip
    received = receive_email(desk, raw)
    assert received.ticket_key is not None
    with read_session(desk) as s:
        ticket = get_ticket(s, received.ticket_key)
        assert (ticket.customer_name, ticket.title) == ("A\\x00nn", "S\\x00ubject")
        assert s.exec(select(InboundMessage)).one().message_id.startswith("<sha256.")
    [comment] = _customer_comments(desk, received.ticket_key)
    assert comment.body == "Bo\\x00dy"
    assert receive_email(desk, raw).outcome == "duplicate"


def test_a_message_without_message_id_is_still_handled_once(desk: Engine) -> None:
    raw = b"From: Ann <ann@example.com>\nSubject: No id\n\nHello there.\n"
    first, second = receive_email(desk, raw), receive_email(desk, raw)
    assert (first.outcome, second.outcome) == ("opened", "duplicate")
    with read_session(desk) as s:
        [record] = s.exec(select(InboundMessage)).all()
        assert record.message_id.startswith("<sha256.")
        assert len(s.exec(select(Ticket)).all()) == 1


def test_an_out_of_office_reply_is_logged_on_its_ticket_and_reopens_nothing(
    desk: Engine,
) -> None:
    key = open_ticket_for(desk, "ann@example.com")
    with transaction(desk) as s:
        change_status(s, None, get_ticket(s, key), get_status(s, "resolved"))
    before = table_counts(desk)
    raw = sample("out_of_office.eml", KEY=key, OUR_ID=our_message_id(desk, key))
    received = receive_email(desk, raw)
    assert (received.outcome, received.ticket_key) == ("auto_reply", key)
    assert len(_ticket_events(desk, key, "message.auto_reply")) == 1
    assert _customer_comments(desk, key) == []
    with read_session(desk) as s:
        assert get_ticket(s, key).status == "resolved"
        assert len(s.exec(select(Ticket)).all()) == before["ticket"]
        assert not s.exec(select(InboundMessage)).one().may_answer


def test_a_seeds_desk_table_sets_the_inbound_team_and_the_reopen_window(desk: Engine) -> None:
    good = '[desk]\ninbound_team = "360"\nreopen_days = 0\n'
    with transaction(desk) as s:
        apply_seed(s, tomllib.loads(good), good)
    key = open_ticket_for(desk, "ann@example.com")
    with transaction(desk) as s:
        change_status(s, None, get_ticket(s, key), get_status(s, "resolved"))
    received = receive_email(desk, sample("thunderbird_reply.eml", KEY=key, OUR_ID="<x@y>"))
    assert received.outcome == "followed_up"  # 0 days: no reply reopens
    stranger = receive_email(desk, sample("stranger_new_question.eml"))
    assert stranger.detail.endswith(": new ticket in team 360 from zoe.novak@gmail.example")
    for bad, problem in [
        ('[desk]\ninbound_team = "Nobody"\n', "[desk]: inbound_team: No team named 'Nobody'"),
        ("[desk]\nreopen_days = -1\n", "[desk]: reopen_days must be a number of days, 0 or more"),
        ("[desk]\nreopen_days = true\n", "[desk]: reopen_days must be a number of days, 0 or more"),
        ('[desk]\nreopen_days = "7"\n', "[desk]: reopen_days must be a int"),
    ]:
        with pytest.raises(SeedProblems) as refused, transaction(desk) as s:
            apply_seed(s, tomllib.loads(bad), bad)
        assert problem in str(refused.value)


def test_the_same_message_taken_by_two_doors_at_once_lands_once(desk: Engine) -> None:
    """An MTA pipe and an IMAP fetch (or two fetchers) racing on one message."""
    key = open_ticket_for(desk, "ann@example.com")
    raw = sample("thunderbird_reply.eml", KEY=key, OUR_ID=our_message_id(desk, key))
    outcomes: list[str] = []
    assert at_once(lambda _: outcomes.append(receive_email(desk, raw).outcome), range(4)) == []
    assert sorted(outcomes) == ["commented", "duplicate", "duplicate", "duplicate"]
    assert len(_customer_comments(desk, key)) == 1


@pytest.mark.parametrize(
    "from_header",
    [
        "=?utf-8?q?ann=40example=2Ecom=2C?= <mallory@attacker.example>",
        "=?utf-8?q?ann=40example=2Ecom?= <mallory@attacker.example>",
        "=?utf-8?b?YW5uQGV4YW1wbGUuY29t?=",  # an encoded word as the whole address
        "ann@example.com, mallory@attacker.example",
    ],
)
def test_an_address_hidden_in_a_display_name_or_beside_another_is_not_the_sender(
    desk: Engine, from_header: str
) -> None:
    key = open_ticket_for(desk, "ann@example.com")
    raw = f"From: {from_header}\nSubject: Re: [{key}] export\n\nLet me in.\n".encode()
    try:
        received = receive_email(desk, raw)
    except RefusedMail:
        pass
    else:
        assert received.ticket_key != key
    assert _customer_comments(desk, key) == []


def test_a_from_with_a_comma_in_an_unquoted_name_still_has_its_one_sender(desk: Engine) -> None:
    raw = b"From: Novak, Ann <ann@example.com>\nSubject: Hello\n\nHi.\n"
    received = receive_email(desk, raw)
    assert received.outcome == "opened" and received.ticket_key is not None
    [comment] = _customer_comments(desk, received.ticket_key)
    assert comment.sender == "ann@example.com"


def test_a_header_past_the_limit_is_refused_in_one_line_and_nothing_stored(desk: Engine) -> None:
    """The stdlib reads a long header in quadratic time: a 1.9 MB References took 18 s."""
    refs = " ".join(f"<id{n}.abcdefghijklmnopqrstuvwxyz@mail.example>" for n in range(2_000))
    raw = f"From: ann@example.com\nReferences: {refs}\nSubject: Hi\n\nHello.\n".encode()
    before = table_counts(desk)
    with pytest.raises(RefusedMail, match=r"^header References of \d+ KB; the limit is 64 KB$"):
        receive_email(desk, raw)
    assert table_counts(desk) == before


def test_a_subject_repeating_a_key_is_looked_up_once(desk: Engine) -> None:
    """150,000 copies of a key in a 1 MB subject were 150,000 queries (47 s)."""
    key = open_ticket_for(desk, "ann@example.com")
    subject = f"[{key}]" * 9_000
    raw = f"From: ann@example.com\nSubject: {subject}\n\nStill broken.\n".encode()
    received = receive_email(desk, raw)
    assert (received.outcome, received.ticket_key) == ("commented", key)
