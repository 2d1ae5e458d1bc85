"""``cxdesk mail import``: files or stdin, one line per message, exit 0 only when each was
handled; no login needed (an MTA's pipe)."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.store.db import read_session, transaction
from cxdesk.store.directory import add_team, ensure_builtin_statuses
from cxdesk.store.models import InboundMessage, Ticket
from tests.cli_helpers import Cli, assert_one_error_line, console_script, table_counts
from tests.mail_helpers import MAIL, open_ticket_for, our_message_id, sample


@pytest.fixture
def desk(inbound_desk: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The desk, and no identity at all: the command must not need one."""
    for name in ("CXDESK_USER", "CXDESK_LOGIN_PASSWORD", "CXDESK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return inbound_desk


def _stdin(monkeypatch: pytest.MonkeyPatch, raw: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))


def _keys(engine: Engine) -> list[str]:
    with read_session(engine) as s:
        return [str(t.key) for t in s.exec(select(Ticket).order_by(Ticket.id))]  # type: ignore[arg-type]


def test_files_are_imported_one_line_each_and_a_duplicate_counts_as_handled(
    desk: Engine, cli: Cli, tmp_path: Path
) -> None:
    key = open_ticket_for(desk, "ann@example.com")
    reply = tmp_path / "reply.eml"
    reply.write_bytes(sample("thunderbird_reply.eml", KEY=key, OUR_ID=our_message_id(desk, key)))
    stranger = MAIL / "stranger_new_question.eml"
    result = cli("mail", "import", str(reply), str(stranger), str(reply))
    assert result.exit_code == 0, str(result)
    new = _keys(desk)[-1]
    assert result.stdout.splitlines() == [
        f"{key}: added to the conversation",
        f"{new}: new ticket in team Solo from zoe.novak@gmail.example",
        f"duplicate: already handled ({key})",
    ]
    assert result.stderr == ""


def test_a_refused_message_is_one_error_line_and_exit_1_the_others_still_land(
    desk: Engine, cli: Cli, tmp_path: Path
) -> None:
    link = tmp_path / "link.eml"
    link.symlink_to(MAIL / "html_only.eml")
    result = cli("mail", "import", str(MAIL / "not_mail.bin"), str(MAIL / "iso_8859_1.eml"),
                 str(MAIL / "no_sender.eml"), str(link), str(tmp_path / "missing.eml"))  # fmt: skip
    assert result.exit_code == 1, str(result)
    assert "Traceback" not in result.output
    assert result.stdout.splitlines() == [
        f"{_keys(desk)[-1]}: new ticket in team Solo from juergen@beispiel.example"
    ]
    assert result.error_lines == [
        f"Error: {MAIL / 'not_mail.bin'}: not an email message: it has no headers",
        f"Error: {MAIL / 'no_sender.eml'}: no usable sender: From 'undisclosed-recipients:;' "
        "holds no valid address",
        f"Error: Cannot read message {link}: it is a symbolic link (name the file itself)",
        f"Error: Cannot read message {tmp_path / 'missing.eml'}: No such file or directory",
    ]
    with read_session(desk) as s:
        assert len(s.exec(select(InboundMessage)).all()) == 1


@pytest.mark.parametrize("args", [(), ("-",)], ids=["no argument", "dash"])
def test_stdin_is_one_message(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    _stdin(monkeypatch, sample("shift_jis.eml"))
    result = cli("mail", "import", *args)
    assert result.exit_code == 0, str(result)
    assert result.stdout == f"{_keys(desk)[-1]}: new ticket in team Solo from yamada@example.jp\n"


def test_garbage_on_stdin_is_refused_and_changes_nothing(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = table_counts(desk)
    _stdin(monkeypatch, b"\x00\x01garbage without headers\n")
    result = cli("mail", "import", "-")
    assert_one_error_line(result, "Error: standard input: not an email message")
    assert table_counts(desk) == before


def test_a_message_larger_than_the_cap_is_refused_unread(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxdesk.engine.inbound import mailgate

    monkeypatch.setattr(mailgate, "MAX_MESSAGE_BYTES", 1024)
    _stdin(monkeypatch, sample("attachments.eml"))
    assert_one_error_line(cli("mail", "import"), "larger than 1 KB")
    before = table_counts(desk)
    assert_one_error_line(cli("mail", "import", str(MAIL / "attachments.eml")), "the limit is 1 KB")
    assert table_counts(desk) == before


@pytest.mark.slow
def test_an_mta_pipes_a_message_into_the_installed_command(desk: Engine, db_url: str) -> None:
    """As Postfix's ``"|cxdesk mail import -"`` does: a real process, the message on stdin."""
    done = subprocess.run(
        [str(console_script()), "mail", "import", "-"],
        input=sample("html_only.eml"),
        capture_output=True,
        env={
            "CXDESK_DATABASE_URL": db_url,
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "CXDESK_COMMAND_SERVER": "off",  # a mail filter's one process, no server left
        },
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == (
        f"{_keys(desk)[-1]}: new ticket in team Solo from priya@fabrikam.example\n"
    )


def test_a_desk_that_cannot_take_mail_defers_it_for_the_mta_and_keeps_nothing(
    engine: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A desk with no team to receive mail: exit 75 (the MTA retries), nothing recorded, so the
    retry once a team exists is handled, not a duplicate."""
    for name in ("CXDESK_USER", "CXDESK_LOGIN_PASSWORD"):
        monkeypatch.delenv(name)
    stranger = str(MAIL / "stranger_new_question.eml")
    result = cli("mail", "import", stranger)
    assert result.exit_code == 75, str(result)
    assert result.error_lines == [
        f"Error: {stranger}: not taken, try again later: The desk has no team to receive "
        "customer messages: add one first"
    ]
    assert table_counts(engine)["inbound_message"] == 0
    with transaction(engine) as s:
        ensure_builtin_statuses(s)
        add_team(s, actor=None, name="Support")
    again = cli("mail", "import", stranger)
    assert again.exit_code == 0, str(again)
    assert again.stdout.endswith(": new ticket in team Support from zoe.novak@gmail.example\n")


def test_an_unreachable_database_defers_the_message(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("CXDESK_DATABASE_URL", f"postgresql://cxdesk@127.0.0.1:{port}/cxdesk")
    _stdin(monkeypatch, sample("html_only.eml"))
    result = cli("mail", "import", "-")
    assert result.exit_code == 75, str(result)
    assert "Traceback" not in result.output
    [line] = result.error_lines
    assert line.startswith("Error: the desk cannot take mail now (the MTA will try again): ")


def test_a_sqlite_desk_that_cannot_be_opened_defers_the_message(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The desk's file cannot be opened (an OSError: here its folder is a file; for Postfix's
    user, a folder it may not read): the message waits in the MTA's queue (75), it is not
    bounced (1, before)."""
    not_a_folder = tmp_path / "desk"
    not_a_folder.write_text("")
    monkeypatch.setenv("CXDESK_DATABASE_URL", f"sqlite:///{not_a_folder / 'cxdesk.db'}")
    _stdin(monkeypatch, sample("html_only.eml"))
    result = cli("mail", "import")
    assert result.exit_code == 75, str(result)
    assert result.error_lines == [
        "Error: the desk cannot take mail now (the MTA will try again): [Errno 20] Not a "
        f"directory: '{not_a_folder / 'cxdesk.db'}'"
    ]


def test_a_bug_while_handling_a_message_keeps_it_for_a_retry_not_a_bounce(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxdesk.engine.inbound import hygiene

    def broken(message: object) -> hygiene.Verdict:
        raise RuntimeError("classifier broke\nsecond line")

    monkeypatch.setattr(hygiene, "classify", broken)
    before = table_counts(desk)
    _stdin(monkeypatch, sample("html_only.eml"))
    result = cli("mail", "import", "-")
    assert result.exit_code == 75, str(result)
    assert result.error_lines == [
        "Error: standard input: not taken, try again later: unexpected RuntimeError: "
        "classifier broke"
    ]
    assert table_counts(desk) == before
