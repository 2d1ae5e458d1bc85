"""``cxdesk mail fetch [--once]`` and ``cxdesk worker`` fetching, against a real Dovecot.

Most tests replace ``receive_email`` (the mail-import slice's) in ``cxdesk.cli.mail_fetch``
with a recorder, to check what the command does around it: exit codes, lines, messages
marked seen. ``test_a_customer_email_in_the_mailbox_becomes_a_ticket`` runs the real one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.engine.inbound.imap import FetchReport, MailboxFetcher
from cxdesk.engine.inbound.mailgate import Received
from cxdesk.store import inbound
from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import set_setting
from cxdesk.store.models import Comment, CommentKind, Ticket
from tests.cli_helpers import Cli, assert_one_error_line
from tests.desk import build_small_desk
from tests.imap_peer import IMAP_PASSWORD, IMAP_USER, ImapServer, Mailbox
from tests.peers import SmtpPeer, free_port
from tests.test_delivery import smtp_variables, wait_until
from tests.test_mail_fetch import Recorder, customer_email
from tests.test_outages import queue_email, stop_with_sigterm, subjects, worker_process


def use_mailbox(
    monkeypatch: pytest.MonkeyPatch, server: ImapServer, folder: str = "INBOX", **changes: str
) -> None:
    """Point cxdesk at ``server``'s folder with the environment variables a user would set."""
    variables = {
        "CXDESK_IMAP_HOST": server.host,
        "CXDESK_IMAP_PORT": str(server.port),
        "CXDESK_IMAP_TLS": "none",
        "CXDESK_IMAP_USERNAME": IMAP_USER,
        "CXDESK_IMAP_PASSWORD": IMAP_PASSWORD,
        "CXDESK_IMAP_FOLDER": folder,
        **changes,
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """``receive_email`` as the CLI calls it, replaced by a recorder."""
    recording = Recorder()
    monkeypatch.setattr("cxdesk.cli.mail_fetch.receive_email", lambda engine, raw: recording(raw))
    return recording


# -- mistakes ----------------------------------------------------------------------------------


def test_without_imap_settings_it_says_what_to_set(cli: Cli) -> None:
    assert_one_error_line(
        cli("mail", "fetch", "--once"), "IMAP is not configured", "CXDESK_IMAP_HOST"
    )


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"CXDESK_IMAP_PASSWORD": "wrong"}, ("IMAP login to", "as desk refused", "failed.")),
        ({"CXDESK_IMAP_FOLDER": "Nope"}, ("Cannot open the IMAP folder 'Nope'", "doesn't exist")),
        ({"CXDESK_IMAP_PASSWORD": ""}, ("No IMAP password: set CXDESK_IMAP_PASSWORD",)),
        ({"CXDESK_IMAP_TLS": "ssl"}, ("Setting imap.tls must be one of none, starttls, tls",)),
    ],
)  # fmt: skip
@pytest.mark.parametrize("once", [True, False])
def test_a_mistake_is_one_line_with_or_without_once(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    imap_mailbox: Mailbox,
    recorder: Recorder,
    changes: dict[str, str],
    fragments: tuple[str, ...],
    once: bool,
) -> None:
    imap_mailbox.append(customer_email("waiting"))
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder, **changes)
    assert_one_error_line(cli("mail", "fetch", *(["--once"] if once else [])), *fragments)
    assert recorder.given == [] and imap_mailbox.unseen() == [1]


def test_an_unreachable_server_is_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, imap_server: ImapServer
) -> None:
    use_mailbox(monkeypatch, imap_server, CXDESK_IMAP_PORT=str(free_port()))
    assert_one_error_line(
        cli("mail", "fetch"), "Cannot reach the IMAP server 127.0.0.1:", "Connection refused"
    )


# -- --once ------------------------------------------------------------------------------------


def test_once_hands_each_message_over_and_exits_0(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, imap_mailbox: Mailbox, recorder: Recorder
) -> None:
    for subject in ("printer jam", "still jammed"):
        imap_mailbox.append(customer_email(subject))
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder)

    result = cli("mail", "fetch", "--once")

    assert result.exit_code == 0, str(result)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("message 1 (<printer-jam.") and lines[0].endswith(
        ": opened EXP-1: printer jam"
    ), str(result)
    assert lines[2] == f"fetched 2 messages from {imap_mailbox.folder}", str(result)
    assert recorder.given == ["printer jam", "still jammed"]
    assert imap_mailbox.unseen() == []

    again = cli("mail", "fetch", "--once")
    assert (
        again.exit_code == 0 and again.stdout == f"fetched 0 messages from {imap_mailbox.folder}\n"
    )
    assert recorder.given == ["printer jam", "still jammed"]


def test_once_exits_1_with_a_line_per_refused_message(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, imap_mailbox: Mailbox, recorder: Recorder
) -> None:
    for subject in ("fine", "junk"):
        imap_mailbox.append(customer_email(subject))
    recorder.refuse.add("junk")
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder)

    result = cli("mail", "fetch", "--once")

    assert result.exit_code == 1, str(result)
    assert "Traceback" not in result.output
    [line] = result.error_lines
    assert line.startswith("Refused: message 2 (<junk.") and line.endswith(
        ": no From address a reply could go to"
    ), str(result)
    assert result.stdout.splitlines()[-1].endswith(", 1 refused")
    assert imap_mailbox.unseen() == []


def test_a_customer_email_in_the_mailbox_becomes_a_ticket(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch, imap_mailbox: Mailbox
) -> None:
    """Dovecot -> ``cxdesk mail fetch --once`` -> the real ``receive_email`` -> a ticket."""
    build_small_desk(engine)
    with transaction(engine) as session:
        set_setting(session, inbound.INBOUND_TEAM_SETTING, "Solo")
    imap_mailbox.append(customer_email("My survey export is empty"))
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder)

    result = cli("mail", "fetch", "--once")
    assert result.exit_code == 0, str(result)
    assert imap_mailbox.unseen() == []
    with read_session(engine) as session:
        [ticket] = session.exec(select(Ticket)).all()
        assert (ticket.customer_email, ticket.source) == ("ann@example.com", "email")
        [comment] = session.exec(select(Comment).where(Comment.ticket_id == ticket.id)).all()
        assert comment.kind == CommentKind.customer
        assert "My survey export is empty: hello desk." in comment.body
    assert cli("mail", "fetch", "--once").exit_code == 0
    with read_session(engine) as session:
        assert len(session.exec(select(Ticket)).all()) == 1


def test_without_once_it_keeps_fetching_until_sigterm(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, imap_mailbox: Mailbox, recorder: Recorder
) -> None:
    """The first pass (the one that checks the settings) finds nothing; a message appended
    after it is handed over by the running fetcher, and the recorder then sends this process
    SIGTERM: a clean stop, exit 0."""
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder)
    stop_after_handling(monkeypatch, recorder)
    monkeypatch.setattr(
        "cxdesk.engine.inbound.imap.MailboxFetcher.fetch_once",
        append_after(imap_mailbox, MailboxFetcher.fetch_once),
    )

    result = cli("mail", "fetch")

    assert result.exit_code == 0, str(result)
    assert recorder.given == ["arrived later"]
    assert result.stdout.splitlines()[-1] == "Fetching stopped.", str(result)
    assert "Stopping after the message being handled" in result.stderr, str(result)


def stop_after_handling(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> None:
    """``receive_email`` records, then sends this process SIGTERM (as ``kill`` would)."""

    def record_then_stop(raw: bytes) -> Received:
        received = recorder(raw)
        os.kill(os.getpid(), signal.SIGTERM)
        return received

    monkeypatch.setattr(
        "cxdesk.cli.mail_fetch.receive_email", lambda engine, raw: record_then_stop(raw)
    )


def append_after(
    box: Mailbox, fetch_once: Callable[[MailboxFetcher], FetchReport]
) -> Callable[[MailboxFetcher], FetchReport]:
    """``fetch_once`` (the command's first pass), then a message appended to ``box``."""

    def first_pass_then_mail(fetcher: MailboxFetcher) -> FetchReport:
        report = fetch_once(fetcher)
        box.append(customer_email("arrived later"))
        return report

    return first_pass_then_mail


# -- the worker --------------------------------------------------------------------------------


def test_worker_once_fetches_then_delivers(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    imap_mailbox: Mailbox,
    recorder: Recorder,
    smtp_server: SmtpPeer,
    engine: Engine,
) -> None:
    imap_mailbox.append(customer_email("hello"))
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder)
    for name, value in smtp_variables(smtp_server).items():
        monkeypatch.setenv(name, value)
    queue_email(engine, "an answer")

    result = cli("worker", "--once")

    assert result.exit_code == 0, str(result)
    assert recorder.given == ["hello"] and subjects(smtp_server) == ["an answer"]
    assert f"fetched 1 message from {imap_mailbox.folder}" in result.stdout


def test_worker_once_delivers_when_the_mailbox_is_down_and_says_so(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    imap_server: ImapServer,
    smtp_server: SmtpPeer,
    engine: Engine,
) -> None:
    use_mailbox(monkeypatch, imap_server, CXDESK_IMAP_PORT=str(free_port()))
    for name, value in smtp_variables(smtp_server).items():
        monkeypatch.setenv(name, value)
    queue_email(engine, "an answer")

    result = cli("worker", "--once")

    assert result.exit_code == 1, str(result)
    assert subjects(smtp_server) == ["an answer"]
    [line] = [line for line in result.error_lines if not line.startswith("Note: ")]
    assert line.startswith("Error: Cannot reach the IMAP server"), str(result)


def test_worker_without_a_password_delivers_and_notes_it(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, imap_server: ImapServer, engine: Engine
) -> None:
    use_mailbox(monkeypatch, imap_server, CXDESK_IMAP_PASSWORD="")
    result = cli("worker", "--once")
    assert result.exit_code == 0, str(result)
    assert "Note: No IMAP password: set CXDESK_IMAP_PASSWORD; mail is not fetched" in result.stderr


def test_the_running_worker_fetches_new_mail(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, imap_mailbox: Mailbox, recorder: Recorder
) -> None:
    """``cxdesk worker`` (in this process) hands over a message from the mailbox; the
    recorder then sends this process SIGTERM, which stops the worker as it would a real one."""
    imap_mailbox.append(customer_email("for the worker"))
    use_mailbox(monkeypatch, imap_mailbox.server, imap_mailbox.folder)
    stop_after_handling(monkeypatch, recorder)

    result = cli("worker", "--poll", "0.1")

    assert result.exit_code == 0, str(result)
    assert recorder.given == ["for the worker"]
    assert result.stdout.splitlines()[-1] == "Worker stopped.", str(result)


@pytest.mark.slow
def test_a_worker_process_delivers_while_the_mailbox_is_unreachable(
    db_url: str, engine: Engine, smtp_server: SmtpPeer, imap_server: ImapServer
) -> None:
    imap = {
        "CXDESK_IMAP_HOST": "127.0.0.1",
        "CXDESK_IMAP_PORT": str(free_port()),
        "CXDESK_IMAP_TLS": "none",
        "CXDESK_IMAP_USERNAME": IMAP_USER,
        "CXDESK_IMAP_PASSWORD": IMAP_PASSWORD,
    }
    with worker_process(db_url, smtp_server, imap) as worker:
        wait_until(lambda: worker.lines_with("IMAP mailbox unreachable, retrying: "),
                   "the worker to say the mailbox is unreachable")  # fmt: skip
        queue_email(engine, "still delivered")
        wait_until(lambda: subjects(smtp_server) == ["still delivered"], "the email")
        assert stop_with_sigterm(worker) == 0, str(worker)
    assert len(worker.lines_with("IMAP mailbox unreachable")) == 1, str(worker)
    assert worker.lines_with("Worker stopped."), str(worker)
    assert not worker.lines_with("Traceback"), str(worker)
