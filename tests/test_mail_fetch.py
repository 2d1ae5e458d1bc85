"""Fetching customer email from a real Dovecot (``tests/imap_peer.py``): each unseen message
handed over once and marked seen only after, refusals marked and reported, a failure leaving
the rest for the next pass, IDLE and polling, reconnecting after the server restarts, TLS, and
one clear line for each mistake. The handler here records what it is given; the real one
(``mailgate.receive_email``) is the mail-import slice's: ``test_mail_fetch_cli.py`` runs it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from cxdesk.engine.inbound import imap
from cxdesk.engine.inbound.imap import (
    FetchFailure,
    FetchReport,
    ImapSettings,
    MailboxError,
    MailboxFetcher,
)
from cxdesk.engine.inbound.mailgate import Received, RefusedMail
from cxdesk.errors import DeskError
from cxdesk.i18n import in_language
from tests.imap_peer import ImapServer, Mailbox
from tests.test_delivery import WAIT_S, wait_until


def customer_email(subject: str) -> bytes:
    """A plain message from a customer, with a Message-ID of its own."""
    return (
        f"From: Ann Customer <ann@example.com>\r\n"
        f"To: help@desk.example.com\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}.{uuid.uuid4().hex[:8]}@example.com>\r\n"
        f"Date: Mon, 07 Dec 2026 09:00:00 +0000\r\n"
        f"\r\n"
        f"{subject}: hello desk.\r\n"
    ).encode()


def subject_of(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.startswith(b"Subject: "):
            return line[len(b"Subject: ") :].decode()
    return ""


@dataclass
class Recorder:
    """A handler that records each message; ``refuse``/``fail`` name subjects it refuses
    (``RefusedMail``) or fails on (a RuntimeError, as a bug or an outage would)."""

    refuse: set[str] = field(default_factory=set)
    fail: set[str] = field(default_factory=set)
    given: list[str] = field(default_factory=list)

    def __call__(self, raw: bytes) -> Received:
        subject = subject_of(raw)
        self.given.append(subject)
        if subject in self.refuse:
            raise RefusedMail("no From address a reply could go to")
        if subject in self.fail:
            raise RuntimeError(f"the desk fell over on {subject}")
        return Received(outcome="opened", ticket_key="EXP-1", detail=f"opened EXP-1: {subject}")


# -- one pass ----------------------------------------------------------------------------------


def test_each_unseen_message_is_handed_over_once_then_marked_seen(imap_mailbox: Mailbox) -> None:
    for subject in ("first", "second", "third"):
        imap_mailbox.append(customer_email(subject))
    recorder = Recorder()
    fetcher = MailboxFetcher(imap_mailbox.settings(), recorder)

    report = fetcher.fetch_once()

    assert recorder.given == ["first", "second", "third"]
    assert [received.detail for _, received in report.handled] == [
        "opened EXP-1: first", "opened EXP-1: second", "opened EXP-1: third"
    ]  # fmt: skip
    assert report.refused == []
    assert imap_mailbox.unseen() == [] and imap_mailbox.seen() == [1, 2, 3]
    assert report.line(imap_mailbox.folder) == f"fetched 3 messages from {imap_mailbox.folder}"

    again = fetcher.fetch_once()
    assert recorder.given == ["first", "second", "third"]
    assert again.handled == [] and again.refused == []


def test_a_message_already_seen_by_a_person_is_left_alone(imap_mailbox: Mailbox) -> None:
    imap_mailbox.append(customer_email("read in a mail client"))
    with imap_mailbox.server.client() as client:
        client.select_folder(imap_mailbox.folder)
        client.add_flags([1], [b"\\Seen"])
    imap_mailbox.append(customer_email("new"))
    recorder = Recorder()
    MailboxFetcher(imap_mailbox.settings(), recorder).fetch_once()
    assert recorder.given == ["new"]


def test_a_refused_message_is_marked_seen_and_reported_in_one_line(imap_mailbox: Mailbox) -> None:
    for subject in ("good", "junk", "also good"):
        imap_mailbox.append(customer_email(subject))
    recorder = Recorder(refuse={"junk"})
    fetcher = MailboxFetcher(imap_mailbox.settings(), recorder)

    report = fetcher.fetch_once()

    assert recorder.given == ["good", "junk", "also good"]
    assert len(report.handled) == 2
    [line] = report.refused
    assert line.startswith("message 2 (<junk.") and "from Ann Customer <ann@example.com>" in line
    assert line.endswith(": no From address a reply could go to") and "\n" not in line
    assert imap_mailbox.unseen() == []  # refused: never tried again
    fetcher.fetch_once()
    assert recorder.given == ["good", "junk", "also good"]


def test_a_handler_failure_leaves_that_message_and_the_rest_for_the_next_pass(
    imap_mailbox: Mailbox,
) -> None:
    for subject in ("one", "two", "three"):
        imap_mailbox.append(customer_email(subject))
    recorder = Recorder(fail={"two"})
    fetcher = MailboxFetcher(imap_mailbox.settings(), recorder)

    with pytest.raises(RuntimeError, match="fell over on two"):
        fetcher.fetch_once()
    assert recorder.given == ["one", "two"]
    assert imap_mailbox.seen() == [1] and imap_mailbox.unseen() == [2, 3]

    recorder.fail.clear()
    fetcher.fetch_once()
    assert recorder.given == ["one", "two", "two", "three"]
    assert imap_mailbox.unseen() == []


def test_a_message_failing_again_and_again_is_set_aside_and_the_rest_flows(
    imap_mailbox: Mailbox,
) -> None:
    for subject in ("one", "poison", "three"):
        imap_mailbox.append(customer_email(subject))
    recorder = Recorder(fail={"poison"})
    fetcher = MailboxFetcher(imap_mailbox.settings(), recorder)

    for _ in range(imap.SET_ASIDE_AFTER - 1):
        with pytest.raises(RuntimeError, match="fell over on poison"):
            fetcher.fetch_once()
    assert imap_mailbox.unseen() == [2, 3]
    report = fetcher.fetch_once()

    assert recorder.given == ["one"] + ["poison"] * imap.SET_ASIDE_AFTER + ["three"]
    [line] = report.set_aside
    assert line.startswith("message 2 (<poison.") and "fell over on poison" in line
    assert "set aside after failing" in report.line(imap_mailbox.folder)
    assert imap_mailbox.unseen() == [2]  # kept in the mailbox, for a restarted fetcher
    fetcher.fetch_once()
    assert recorder.given.count("poison") == imap.SET_ASIDE_AFTER


def test_a_desk_error_fails_every_message_alike_and_sets_none_aside(
    imap_mailbox: Mailbox,
) -> None:
    imap_mailbox.append(customer_email("one"))

    def no_team(raw: bytes) -> Received:
        raise DeskError("no team receives mail")

    fetcher = MailboxFetcher(imap_mailbox.settings(), no_team)
    for _ in range(imap.SET_ASIDE_AFTER + 1):
        with pytest.raises(DeskError):
            fetcher.fetch_once()
    assert imap_mailbox.unseen() == [1]


def test_a_hostile_message_id_is_reported_as_printable_text(imap_mailbox: Mailbox) -> None:
    imap_mailbox.append(
        b"From: x@example.com\r\nMessage-ID: <\x1b[31mred\x07@evil>\r\nSubject: bad\r\n\r\nhi\r\n"
    )
    report = MailboxFetcher(imap_mailbox.settings(), Recorder(refuse={"bad"})).fetch_once()
    [line] = report.refused
    assert "\x1b" not in line and "\x07" not in line and "red" in line


# -- mistakes: one line each -------------------------------------------------------------------


def test_a_wrong_password_is_one_line(imap_mailbox: Mailbox) -> None:
    fetcher = MailboxFetcher(imap_mailbox.settings(password="not-it"), Recorder())
    with pytest.raises(MailboxError) as caught:
        fetcher.fetch_once()
    line = str(caught.value)
    assert line == (
        f"IMAP login to {imap_mailbox.server.host}:{imap_mailbox.server.port} as desk refused: "
        "[AUTHENTICATIONFAILED] Authentication failed. "
        "(check CXDESK_IMAP_USERNAME and CXDESK_IMAP_PASSWORD)"
    )


def test_a_folder_that_does_not_exist_is_one_line(imap_mailbox: Mailbox) -> None:
    fetcher = MailboxFetcher(imap_mailbox.settings(folder="No such folder"), Recorder())
    with pytest.raises(MailboxError, match="^Cannot open the IMAP folder 'No such folder' on "):
        fetcher.fetch_once()


def test_an_unreachable_server_is_one_line(imap_server: ImapServer) -> None:
    from tests.peers import free_port

    port = free_port()
    with pytest.raises(MailboxError) as caught:
        MailboxFetcher(imap_server.settings(port=port), Recorder()).fetch_once()
    assert str(caught.value) == (
        f"Cannot reach the IMAP server {imap_server.host}:{port}: [Errno 111] Connection refused"
    )


def test_tls_to_a_plain_port_says_which_settings_to_check(imap_server: ImapServer) -> None:
    with pytest.raises(MailboxError) as caught:
        MailboxFetcher(imap_server.settings(tls="tls"), Recorder()).fetch_once()
    line = str(caught.value)
    assert line.startswith(f"TLS with the IMAP server {imap_server.host}:{imap_server.port} ")
    assert line.endswith("(no TLS on this port: check CXDESK_IMAP_PORT and CXDESK_IMAP_TLS)")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "IMAP is not configured: set CXDESK_IMAP_HOST"),
        ({"CXDESK_IMAP_HOST": "h"}, "No IMAP username: set CXDESK_IMAP_USERNAME"),
        ({"CXDESK_IMAP_HOST": "h", "CXDESK_IMAP_USERNAME": "u"}, "No IMAP password"),
    ],
)
def test_missing_settings_say_what_to_set(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DeskError, match=f"^{message}"):
        ImapSettings.load({}).check()


# -- settings ----------------------------------------------------------------------------------


def test_settings_come_from_the_file_overridden_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = {"host": "imap.example.com", "username": "help", "folder": "Support", "tls": "starttls"}
    settings = ImapSettings.load(table)
    assert (settings.host, settings.port, settings.tls, settings.folder) == (
        "imap.example.com", 143, "starttls", "Support"
    )  # fmt: skip
    assert (ImapSettings.load({"host": "h"}).port, ImapSettings.load({"host": "h"}).tls) == (
        993, "tls"
    )  # fmt: skip
    monkeypatch.setenv("CXDESK_IMAP_HOST", "other.example.com")
    monkeypatch.setenv("CXDESK_IMAP_PORT", "1993")
    monkeypatch.setenv("CXDESK_IMAP_PASSWORD", "s3cret")
    settings = ImapSettings.load(table)
    assert (settings.host, settings.port, settings.password) == (
        "other.example.com", 1993, "s3cret"
    )  # fmt: skip
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"password": "x"}, "[imap] password must not be in the config file: set CXDESK_IMAP_"),
        ({"hots": "x"}, "Unknown setting in [imap]: hots"),
        ({"tls": "ssl"}, "Setting imap.tls must be one of none, starttls, tls, not 'ssl'"),
        ({"port": "imap"}, "Setting imap.port must be a port number, not 'imap'"),
        ({"port": 70000}, "Setting imap.port must be between 1 and 65535, not 70000"),
        ({"poll": 0}, "Setting imap.poll must be more than 0 seconds, not 0"),
        ({"folder": "In\r\nbox"}, "Setting imap.folder must be one line of printable text"),
        ({"host": 5}, "Setting imap.host must be a string, not 5"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_one_line(table: dict[str, object], message: str) -> None:
    with pytest.raises(DeskError) as caught:
        ImapSettings.load(table)
    assert str(caught.value).startswith(message)


# -- waiting for mail --------------------------------------------------------------------------


@dataclass
class Running:
    """A fetcher's ``run_forever`` on a thread, and what it said."""

    stop: threading.Event
    idling: threading.Event
    passes: list[FetchReport] = field(default_factory=list)
    troubles: list[str] = field(default_factory=list)
    recoveries: list[str] = field(default_factory=list)


@contextmanager
def running(fetcher: MailboxFetcher) -> Iterator[Running]:
    state = Running(threading.Event(), threading.Event())

    def trouble(failure: FetchFailure) -> None:
        state.idling.clear()
        state.troubles.append(failure.line())

    thread = threading.Thread(
        target=fetcher.run_forever,
        args=(state.stop,),
        kwargs={
            "on_trouble": trouble,
            "on_recovery": lambda failure: state.recoveries.append(failure.recovery_line()),
            "after_pass": state.passes.append,
            "on_idle": state.idling.set,
        },
        daemon=True,
    )
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        thread.join(WAIT_S)
        assert not thread.is_alive(), "run_forever did not return after stop"


def test_idle_hands_over_a_message_as_it_arrives(imap_mailbox: Mailbox) -> None:
    recorder = Recorder()
    # A poll of an hour: only IDLE can bring the message within the wait.
    fetcher = MailboxFetcher(imap_mailbox.settings(poll=3600.0), recorder)
    with running(fetcher) as state:
        wait_until(state.idling.is_set, "the fetcher to enter IDLE")
        imap_mailbox.append(customer_email("while idle"))
        wait_until(lambda: recorder.given == ["while idle"], "the new message to be handed over")
        wait_until(lambda: imap_mailbox.unseen() == [], "the message to be marked seen")
    assert state.troubles == []


def test_without_idle_the_folder_is_polled(imap_mailbox: Mailbox) -> None:
    recorder = Recorder()
    fetcher = MailboxFetcher(imap_mailbox.settings(poll=0.1), recorder, idle=False)
    with running(fetcher) as state:
        wait_until(lambda: state.passes, "a first pass")
        imap_mailbox.append(customer_email("polled"))
        wait_until(lambda: recorder.given == ["polled"], "the message to be handed over")
    assert not state.idling.is_set()


@pytest.mark.slow
def test_fetching_outlives_a_dovecot_restart(own_imap_server: ImapServer) -> None:
    recorder = Recorder()
    fetcher = MailboxFetcher(own_imap_server.settings(poll=3600.0), recorder)
    with running(fetcher) as state:
        wait_until(state.idling.is_set, "the fetcher to enter IDLE")
        own_imap_server.stop()
        wait_until(lambda: state.troubles, "the fetcher to say the mailbox is gone")
        [line] = state.troubles
        assert line.startswith("IMAP mailbox unreachable, retrying: "), line
        own_imap_server.start()  # the same port again
        wait_until(state.idling.is_set, "the fetcher to be back in IDLE")
        with own_imap_server.client() as client:
            client.append("INBOX", customer_email("after the restart"))
        wait_until(lambda: recorder.given == ["after the restart"], "the message after restart")
    assert len(state.troubles) == 1, state.troubles
    [recovered] = state.recoveries
    assert recovered.startswith("IMAP mailbox reachable again after ")


@pytest.mark.slow
@pytest.mark.parametrize("tls", ["tls", "starttls"])
def test_tls_and_starttls_with_a_trusted_certificate(
    own_imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch, tls: str
) -> None:
    port = own_imap_server.tls_port if tls == "tls" else own_imap_server.port
    with own_imap_server.client() as client:
        client.append("INBOX", customer_email("over tls"))
    settings = own_imap_server.settings(tls=tls, port=port)

    with pytest.raises(MailboxError, match="^TLS with the IMAP server .* failed: .*CERTIFICATE"):
        MailboxFetcher(settings, Recorder()).fetch_once()

    monkeypatch.setenv("SSL_CERT_FILE", own_imap_server.cert_file)
    recorder = Recorder()
    MailboxFetcher(settings, recorder).fetch_once()
    assert recorder.given == ["over tls"]


def test_the_idle_wait_is_under_the_servers_29_minutes() -> None:
    assert imap.REIDLE_S < 29 * 60


@pytest.mark.parametrize(
    ("language", "one", "two"),
    [
        ("fr", "1 refusé, 1 mis de côté", "2 refusés, 2 mis de côté"),
        ("it", "1 rifiutato, 1 messo da parte", "2 rifiutati, 2 messi da parte"),
        ("en", "1 refused, 1 set aside", "2 refused, 2 set aside"),
    ],
)
def test_a_pass_summary_counts_with_the_languages_plural(language: str, one: str, two: str) -> None:
    def summary(n: int) -> str:
        report = FetchReport(refused=["x"] * n, set_aside=["y"] * n)
        with in_language(language):
            return report.line("INBOX")

    assert one in summary(1) and two in summary(2), (summary(1), summary(2))
