"""``cxdesk ticket show`` (text and ``--json``) with a conversation and the customer's history,
and ``cxdesk ticket attachment`` listing and writing files, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.cli_helpers import Cli, assert_one_error_line
from tests.conversation_desk import (
    ANN_EMAIL,
    ANSWER,
    FAILURE,
    LOG_FILE,
    NOTE,
    PICTURE,
    REPLY,
    AnnsDesk,
    anns_desk,
)


@pytest.fixture
def desk(engine: Engine) -> AnnsDesk:
    return anns_desk(engine)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of the test's own (``tmp_path`` holds the desk's home)."""
    made = tmp_path / "files"
    made.mkdir()
    return made


def table_rows(text: str, title: str) -> list[list[str]]:
    """The cells of the rows of the table printed under ``title``."""
    lines = text.split(f"\n{title}", 1)[1].splitlines()
    end = next(n for n, line in enumerate(lines) if line.startswith("└"))
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines[4:end]]


def test_ticket_show_makes_the_three_kinds_plain(cli: Cli, desk: AnnsDesk) -> None:
    shown = cli("ticket", "show", desk.key, "--as", "maya")
    assert shown.exit_code == 0, str(shown)
    text = shown.stdout
    assert "internal note · maya" in text
    assert "to customer by email · maya · sent" in text
    assert f"from {ANN_EMAIL} by email" in text
    assert f"failed: {FAILURE}" in text
    assert table_rows(text, "Attachments") == [
        ["1", LOG_FILE[0], "text/plain", "700 B"],
        ["2", ".bashrc.png", "image/png", f"{len(PICTURE[2])} B"],
    ]
    assert "Customer's other tickets" in text
    assert desk.by_email in text and desk.by_phone in text and desk.stranger not in text


def test_ticket_show_says_in_one_line_that_the_customer_has_no_other_tickets(
    cli: Cli, desk: AnnsDesk
) -> None:
    shown = cli("ticket", "show", desk.stranger, "--as", "maya")
    assert shown.exit_code == 0, str(shown)
    assert "Customer's other tickets" not in shown.stdout
    assert "The customer has no other tickets." in shown.stdout


def test_ticket_show_json_has_the_conversation_and_the_history(cli: Cli, desk: AnnsDesk) -> None:
    shown = cli("ticket", "show", desk.key, "--json")
    assert shown.exit_code == 0, str(shown)
    record = json.loads(shown.stdout)
    conversation = record["conversation"]
    assert [(c["kind"], c["body"]) for c in conversation][:3] == [
        ("note", NOTE), ("reply", REPLY), ("customer", ANSWER)
    ]  # fmt: skip
    reply, answer, failed = conversation[1], conversation[2], conversation[3]
    assert (reply["delivery"], reply["to"], reply["channel"]) == ("sent", ANN_EMAIL, "email")
    assert (failed["delivery"], failed["reason"]) == ("failed", FAILURE)
    assert (answer["sender"], answer["author"]) == (ANN_EMAIL, None)
    assert answer["attachments"] == [
        {"n": 1, "name": LOG_FILE[0], "type": "text/plain", "size": len(LOG_FILE[2])},
        {"n": 2, "name": ".bashrc.png", "type": "image/png", "size": len(PICTURE[2])},
    ]
    assert [h["key"] for h in record["history"]] == [desk.by_phone, desk.by_email]
    assert set(record["history"][0]) == {"key", "title", "status", "created_at"}


def test_ticket_attachment_lists_then_writes_one_file(
    cli: Cli, desk: AnnsDesk, folder: Path
) -> None:
    listed = cli("ticket", "attachment", desk.key)
    assert listed.exit_code == 0, str(listed)
    assert LOG_FILE[0] in listed.stdout and ".bashrc.png" in listed.stdout

    target = folder / "saved.txt"
    written = cli("ticket", "attachment", desk.key, "1", "--output", str(target))
    assert written.exit_code == 0, str(written)
    assert target.read_bytes() == LOG_FILE[2]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert f"written to {target}" in written.stdout

    picture = folder / "picture.png"
    assert cli("ticket", "attachment", desk.key, "2", "-o", str(picture)).exit_code == 0
    assert picture.read_bytes() == PICTURE[2]
    assert sorted(p.name for p in folder.iterdir()) == ["picture.png", "saved.txt"]
    assert not (folder.parent / ".bashrc.png").exists()  # the name in the mail names nothing

    none = cli("ticket", "attachment", desk.stranger)
    assert (none.exit_code, none.stdout.strip()) == (0, f"{desk.stranger} has no attachments.")


def test_an_existing_file_is_replaced_only_with_force(
    cli: Cli, desk: AnnsDesk, folder: Path
) -> None:
    target = folder / "mine.txt"
    target.write_bytes(b"keep me")
    refused = cli("ticket", "attachment", desk.key, "1", "--output", str(target))
    assert_one_error_line(refused, str(target), "already exists", "--force")
    assert target.read_bytes() == b"keep me"

    forced = cli("ticket", "attachment", desk.key, "1", "--output", str(target), "--force")
    assert forced.exit_code == 0, str(forced)
    assert target.read_bytes() == LOG_FILE[2]


def test_a_symbolic_link_at_the_path_is_never_followed(
    cli: Cli, desk: AnnsDesk, folder: Path
) -> None:
    victim = folder / "victim.txt"
    victim.write_bytes(b"precious")
    link = folder / "link.txt"
    link.symlink_to(victim)
    assert_one_error_line(
        cli("ticket", "attachment", desk.key, "1", "--output", str(link)), "already exists"
    )
    assert cli("ticket", "attachment", desk.key, "1", "-o", str(link), "--force").exit_code == 0
    assert victim.read_bytes() == b"precious"  # the link was replaced, not its target
    assert not link.is_symlink() and link.read_bytes() == LOG_FILE[2]


@pytest.mark.parametrize(
    ("number", "output", "fragments"),
    [
        ("3", "out.txt", ("has no attachment 3", "it has 2 attachments")),
        ("0", "out.txt", ("has no attachment 0",)),
        ("1", ".", ("it is a folder",)),
        ("1", "missing/out.txt", ("no folder",)),
        ("1", None, ("--output PATH",)),
        (None, "out.txt", ("which attachment",)),
    ],
)
def test_bad_attachment_requests_are_one_line_and_write_nothing(
    cli: Cli,
    desk: AnnsDesk,
    folder: Path,
    number: str | None,
    output: str | None,
    fragments: tuple[str, ...],
) -> None:
    args = ["ticket", "attachment", desk.key]
    args += [number] if number is not None else []
    args += ["--output", str(folder / output)] if output is not None else []
    assert_one_error_line(cli(*args), *fragments)
    assert os.listdir(folder) == []


def test_an_unknown_ticket_is_one_line(cli: Cli, desk: AnnsDesk) -> None:
    assert_one_error_line(cli("ticket", "attachment", "EXP-999"), "EXP-999")
