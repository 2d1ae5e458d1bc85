"""Hostile input through the CLI, on SQLite and PostgreSQL: each refusal is one ``Error:`` line,
exit 1, no traceback and not one row changed; stored hostile text never reaches the terminal.

- Attachments that are not regular files: a symbolic link (to a secret), a FIFO named .txt
  (which used to hang the command), a device, a folder.
- Seed files: a device, a FIFO, more than 1 MB, nested 5,000 deep (a RecursionError before).
- CR/LF and other control characters in a name, on every path that takes one.
- Workflows that would trigger themselves, refused when saved, copied or enabled.
- ``ticket show`` of a comment carrying terminal escapes; the same comment on the TUI's
  ticket screen (Pilot), where every character drawn is checked; the TUI's new-ticket form,
  where a pasted escape arrives as visible text and a name holding one is refused.

(The property tests of the text rules and the check-in answers: tests/test_hostile.py.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, Label, Select

from cxdesk.app import CxDeskApp, create_app
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.workflows import save_workflow
from cxdesk.errors import ValidationFailed
from cxdesk.screens.new_ticket import NewTicketScreen
from cxdesk.screens.ticket import TicketScreen
from cxdesk.store import tickets as ops
from cxdesk.store.csv_files import MAX_IMPORT_BYTES
from cxdesk.store.db import transaction
from cxdesk.store.directory import get_user
from cxdesk.store.models import Ticket
from cxdesk.text import text_problem
from tests import tui_helpers
from tests.cli_helpers import Cli, CliResult, assert_one_error_line, table_counts
from tests.desk import build_small_desk
from tests.loop_helpers import write_csv
from tests.tui_helpers import drawn_text, log_in, wait_until, with_login

# Clears the screen, writes the clipboard (OSC 52), starts an 8-bit CSI, overwrites the line.
HOSTILE_COMMENT = "see \x1b[2J log \x1b]52;c;SGVsbG8=\x07 then \x9b31m red\rover"
ON_SCREEN = "see \\x1b[2J log \\x1b]52;c;SGVsbG8=\\x07 then \\x9b31m red\\rover"


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def refused(engine: Engine, run: Callable[[], CliResult], *fragments: str) -> str:
    """``run()`` is one error line naming ``fragments`` and changes no row; the line."""
    before = table_counts(engine)
    line = assert_one_error_line(run(), *fragments)
    assert table_counts(engine) == before
    return line


def a_ticket(engine: Engine) -> str:
    with unit_of_work(engine) as s:
        ticket = ops.create_manual_ticket(
            s, actor=get_user(s, "maya"), customer_email="ada@example.com", team="360",
            comment="Exports fail", customer_name="Ada Lovelace",
        )  # fmt: skip
        return str(ticket.key)


# -- attachments --------------------------------------------------------------------------------


def _symlink(folder: Path) -> tuple[Path, str]:
    secret = folder / "secret"
    secret.write_text("root:$6$hash\n")
    link = folder / "notes.txt"
    link.symlink_to(secret)
    return link, "symbolic link"


def _fifo(folder: Path) -> tuple[Path, str]:
    fifo = folder / "notes.txt"
    os.mkfifo(fifo)  # nothing ever writes to it: opening it for reading used to block
    return fifo, "FIFO"


def _folder(folder: Path) -> tuple[Path, str]:
    inner = folder / "notes.txt"
    inner.mkdir()
    return inner, "folder"


def _device(_folder: Path) -> tuple[Path, str]:
    return Path("/dev/zero"), "device"


@pytest.mark.parametrize("make", [_symlink, _fifo, _folder, _device],
                         ids=["symlink", "fifo", "folder", "device"])  # fmt: skip
def test_an_attachment_that_is_not_a_regular_file_is_refused(
    cli: Cli, desk: Engine, tmp_path: Path, make: Callable[[Path], tuple[Path, str]]
) -> None:
    key = a_ticket(desk)
    path, kind = make(tmp_path)
    comment = ("ticket", "comment", key, "--as", "maya", "--comment", "attached")
    refused(desk, lambda: cli(*comment, "--attach", str(path)), str(path), kind)
    change = ("ticket", "update", key, "--as", "maya", "--comment", "x", "--priority", "high")
    refused(desk, lambda: cli(*change, "--attach", str(path)), kind)


# -- seed files -----------------------------------------------------------------------------


def _nested_arrays(folder: Path) -> Path:
    path = folder / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    return path


def _nested_tables(folder: Path) -> Path:
    path = folder / "deep.toml"
    path.write_text("[desk]\n" + "a." * 5000 + "b = 1\n")
    return path


def _huge(folder: Path) -> Path:
    path = folder / "huge.toml"
    path.write_text("# padding\n" * 120_000)  # 1.2 MB of comments: valid TOML, too big
    return path


def _seed_fifo(folder: Path) -> Path:
    path = folder / "seed.toml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (_nested_arrays, "nest more than"),
        (_nested_tables, "nest more than"),
        (_huge, "the limit is 1024 KB"),
        (_seed_fifo, "FIFO"),
        (lambda _: Path("/dev/zero"), "device"),
    ],
    ids=["arrays-5000-deep", "tables-5000-deep", "1.2MB", "fifo", "dev-zero"],
)
def test_a_hostile_seed_file_is_one_line_and_applies_nothing(
    cli: Cli, desk: Engine, tmp_path: Path, make: Callable[[Path], Path], fragment: str
) -> None:
    path = make(tmp_path)
    refused(desk, lambda: cli("seed", str(path)), fragment)


# -- CSV files to import ------------------------------------------------------------------------


def _csv_link(folder: Path) -> Path:
    target = folder / "elsewhere.csv"
    target.write_text("name,email\nAda,ada@example.com\n", encoding="utf-8")
    link = folder / "contacts.csv"
    link.symlink_to(target)  # a valid CSV: followed, it would be imported
    return link


def _csv_fifo(folder: Path) -> Path:
    path = folder / "contacts.csv"
    os.mkfifo(path)  # nothing ever writes to it: reading it used to block for ever
    return path


def _csv_over_cap(folder: Path) -> Path:
    path = folder / "contacts.csv"
    with path.open("wb") as handle:
        handle.write(b"name,email\n")
        handle.truncate(MAX_IMPORT_BYTES + 1)  # sparse: no disk used
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (_csv_link, "symbolic link"),
        (_csv_fifo, "FIFO"),
        (lambda _: Path("/dev/zero"), "device"),  # read for ever before
        (_csv_over_cap, "the limit is 20480 KB"),
    ],
    ids=["symlink", "fifo", "dev-zero", "over-20MB"],
)
def test_a_csv_to_import_that_is_not_a_regular_file_or_too_big_is_one_line(
    cli: Cli, desk: Engine, tmp_path: Path, make: Callable[[Path], Path], fragment: str
) -> None:
    path = make(tmp_path)
    refused(desk, lambda: cli("contact", "import", str(path)), fragment)
    answers = ("responses", "import", str(path), "--survey", "checkin")
    refused(desk, lambda: cli(*answers), fragment)


# -- names ----------------------------------------------------------------------------------

BAD_NAMES = ["Ada\r\nBcc: all@example.com", "Ada\x1b[2J", "Ada\u2028Lovelace", "\u202eecalevoL"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=["crlf", "escape", "line-separator", "bidi"])
def test_a_name_with_control_characters_is_refused_on_every_cli_path(
    cli: Cli, desk: Engine, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    shown = text_problem(name)
    assert shown is not None and "\n" not in shown and "\x1b" not in shown
    create = ("ticket", "create", "--as", "maya", "--email", "ada@example.com", "--team", "360",
              "--comment", "Exports fail")  # fmt: skip
    refused(desk, lambda: cli(*create, "--name", name), "customer_name", shown)
    refused(desk, lambda: cli("team", "add", name), "name")
    refused(desk, lambda: cli("queue", "add", name, "--team", "360"), "name")
    refused(desk, lambda: cli("status", "add", name, "--category", "open"), "name")
    user = ("user", "add", "ada", "--email", "ada@example.com", "--role", "expert")
    monkeypatch.setenv("CXDESK_PASSWORD", "correct horse")
    refused(desk, lambda: cli(*user, "--name", name), "name")
    refused(
        desk,
        lambda: cli(
            "campaign", "create", name, "--filter", "plan=pro", "--subject", "Hi", "--team", "360"
        ),  # fmt: skip
        "name",
    )
    checkin = ("checkin", "--as", "vera", "--answer", "last_name=Lovelace", "--answer",
               "email=ada@example.com", "--answer", "product=360")  # fmt: skip
    refused(desk, lambda: cli(*checkin, "--answer", f"first_name={name}"), "first_name")


@pytest.mark.parametrize("name", ["Ada\x1b[2J", "\u202eecalevoL"], ids=["escape", "bidi"])
def test_imported_names_with_control_characters_are_refused_by_line(
    cli: Cli, desk: Engine, tmp_path: Path, name: str
) -> None:
    contacts = write_csv(tmp_path / "contacts.csv", ["name", "email"], [[name, "a@example.com"]])
    result = cli("contact", "import", str(contacts))
    assert result.exit_code == 1 and "Traceback" not in result.output, str(result)
    assert "line 2" in result.stderr and "control characters" in result.stderr
    assert "\x1b" not in result.output and "\u202e" not in result.output
    answers = write_csv(
        tmp_path / "answers.csv",
        ["first_name", "last_name", "email", "product"],
        [[name, "Lovelace", "ada@example.com", "360"]],
    )
    before = table_counts(desk)
    result = cli("responses", "import", str(answers), "--survey", "checkin")
    assert result.exit_code == 1 and "control characters" in result.stderr, str(result)
    assert table_counts(desk) == before


# -- workflows that trigger themselves -----------------------------------------------------------

ECHO = {"type": "comment", "body": "We read it"}


def seed_file(folder: Path, text: str) -> Path:
    path = folder / "workflows.toml"
    path.write_text(text)
    return path


def test_a_workflow_that_triggers_itself_is_refused_by_the_seed(
    cli: Cli, desk: Engine, tmp_path: Path
) -> None:
    echo = seed_file(tmp_path, (
        '[[workflows]]\nname = "Echo"\nevent = "ticket.commented"\n'
        'tasks = [{ type = "comment", body = "We read it" }]\n'
    ))  # fmt: skip
    before = table_counts(desk)
    result = cli("seed", str(echo))
    assert result.exit_code == 1 and result.stdout == "", str(result)
    assert "Traceback" not in result.output
    assert "(Echo -> Echo)" in result.stderr and "nothing applied" in result.stderr
    assert table_counts(desk) == before
    # Through a cycle: a created ticket is escalated, an escalation creates a ticket.
    cycle = seed_file(tmp_path, (
        '[[workflows]]\nname = "Ping"\nevent = "ticket.created"\n'
        'tasks = [{ type = "escalate" }]\n\n'
        '[[workflows]]\nname = "Pong"\nevent = "ticket.escalated"\n'
        'tasks = [{ type = "create_ticket", title = "Again", team = "360" }]\n'
    ))  # fmt: skip
    result = cli("seed", str(cycle))
    assert result.exit_code == 1 and "(Pong -> Ping -> Pong)" in result.stderr, str(result)
    assert table_counts(desk) == before


def test_workflows_that_end_by_themselves_are_kept(desk: Engine) -> None:
    with transaction(desk) as s:
        # Escalating on any status change: the second run finds it escalated, and stops.
        save_workflow(s, actor=None, name="Escalate", event="ticket.status_changed",
                      tasks=[{"type": "escalate"}])  # fmt: skip
        # Its tickets come from a survey, so "source is campaign" never matches them.
        save_workflow(
            s, actor=None, name="Route", event="ticket.created",
            conditions={"all": [{"field": "tck://Field/source", "op": "is", "value": "campaign"}]},
            tasks=[{"type": "create_ticket", "team": "360", "title": "Copy"}],
        )  # fmt: skip


def on_status(session: Session, name: str, when: str, then: str) -> None:
    """A workflow: when a ticket's status becomes ``when``, set it to ``then``."""
    save_workflow(
        session, actor=None, name=name, event="ticket.status_changed",
        conditions={"field": "tck://Field/status", "op": "is", "value": when},
        tasks=[{"type": "change_status", "status": then}],
    )  # fmt: skip


def test_status_changes_that_chain_are_kept_and_ones_that_ping_pong_are_refused(
    desk: Engine,
) -> None:
    with transaction(desk) as s:  # new -> open -> Follow up later, then nothing matches
        on_status(s, "Open new", "new", "open")
        on_status(s, "Park open", "open", "Follow up later")
    loop = r"\(Back -> Park open -> Back\)"
    with pytest.raises(ValidationFailed, match=loop), transaction(desk) as s:
        on_status(s, "Back", "Follow up later", "open")


def test_copying_or_enabling_into_a_loop_is_refused(cli: Cli, desk: Engine) -> None:
    with transaction(desk) as s:
        save_workflow(s, actor=None, name="Escalate new", event="ticket.created",
                      tasks=[{"type": "escalate"}])  # fmt: skip
        again = {"type": "create_ticket", "team": "360", "title": "Again"}
        save_workflow(s, actor=None, name="Reopen", event="ticket.escalated", enabled=False,
                      tasks=[again])  # fmt: skip
        save_workflow(
            s, actor=None, name="To API", event="ticket.created",
            conditions={"all": [{"field": "tck://Field/team", "op": "is", "value": "360"}]},
            tasks=[{"type": "create_ticket", "team": "Solo", "title": "Copy"}],
        )  # fmt: skip
    refused(desk, lambda: cli("workflow", "enable", "Reopen"), "Reopen -> Escalate new -> Reopen")
    refused(
        desk,
        lambda: cli("workflow", "copy", "To API", "To 360", "--team", "360"),
        "(To 360 -> To 360)",
    )
    assert cli("workflow", "copy", "To API", "To Stats", "--team", "Stats iQ").exit_code == 0


# -- stored hostile text on the terminal -----------------------------------------------------


def comment_hostile_text(engine: Engine) -> str:
    """A ticket whose comment, title and customer name hold terminal escapes (the name and
    title written past validation, as an older desk may hold them)."""
    key = a_ticket(engine)
    with unit_of_work(engine) as s:
        ops.add_comment(s, actor=get_user(s, "maya"), key=key, body=HOSTILE_COMMENT)
    with transaction(engine) as s:
        s.execute(
            update(Ticket).where(Ticket.key == key)  # type: ignore[arg-type]
            .values(customer_name="Ada\x1b[2J", title="Exports \x9b31m fail")
        )  # fmt: skip
    return key


def test_ticket_show_never_prints_terminal_escapes(cli: Cli, desk: Engine) -> None:
    key = comment_hostile_text(desk)
    shown = cli("ticket", "show", key)
    assert shown.exit_code == 0, str(shown)
    assert text_problem(shown.output.replace("\n", "")) is None, repr(shown.output)
    assert ON_SCREEN in shown.stdout.replace("\n", "") or "\\x1b[2J" in shown.stdout
    assert "Ada\\x1b[2J" in shown.stdout and "Exports \\x9b31m fail" in shown.stdout
    as_json = cli("ticket", "show", key, "--json")
    assert "\x9b" not in as_json.stdout and "\x1b" not in as_json.stdout
    record = json.loads(as_json.stdout)
    assert record["conversation"][-1]["body"] == HOSTILE_COMMENT  # exact, escaped by JSON
    assert record["customer_name"] == "Ada\x1b[2J"


def run_as_maya(engine: Engine, script: Callable[[CxDeskApp, Pilot[Any]], Awaitable[None]]) -> None:
    """``script`` on the app, logged in as maya (an expert on 360) at 160x48."""
    tui_helpers.run_app(
        engine, lambda e: create_app(e, user="maya", poll_seconds=0.2), script, size=(160, 48)
    )


@pytest.fixture
def tui_desk(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("CXDESK_DELIVER", "0")  # nothing here sends mail or SMS
    build_small_desk(engine)
    return engine


def test_the_ticket_screen_shows_terminal_escapes_harmlessly(tui_desk: Engine) -> None:
    key = comment_hostile_text(tui_desk)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        screen = TicketScreen(key)
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.view is not None, "the ticket")
        await wait_until(pilot, lambda: "Exports" in drawn_text(app), "the ticket drawn")
        await wait_until(pilot, lambda: "see \\x1b" in drawn_text(app), "the comment drawn")
        drawn = drawn_text(app)
        assert text_problem(drawn.replace("\n", "")) is None, repr(drawn)
        assert "Ada\\x1b[2J" in drawn and "Exports \\x9b31m fail" in drawn
        assert "see \\x1b[2J log \\x1b]52;c;SGVsbG8=\\x07" in drawn

    run_as_maya(tui_desk, script)


def test_the_new_ticket_form_never_takes_a_name_with_an_escape(tui_desk: Engine) -> None:
    before = table_counts(tui_desk)

    async def script(app: CxDeskApp, pilot: Pilot[Any]) -> None:
        await log_in(app, pilot)
        form = NewTicketScreen()
        app.push_screen(form)

        def teams_listed() -> bool:
            return any(len(team._options) > 1 for team in form.query("#team").results(Select))

        await wait_until(pilot, teams_listed, "the form's team choices")
        form.query_one("#email", Input).value = "ada@example.com"
        name = form.query_one("#name", Input)
        name.focus()
        app.post_message(events.Paste("Ada\x1b[2J"))  # a paste arrives as visible escapes
        await wait_until(pilot, lambda: name.value == "Ada\\x1b[2J", "the paste")
        assert text_problem(drawn_text(app).replace("\n", "")) is None
        name.value = "Ada\x1b[2J"  # what no key or paste can type: the store refuses it
        form.query_one("#team", Select).value = "360"
        form.query_one("#comment", Input).focus()
        await pilot.press(*"Exports fail", "enter")
        error = form.query_one("#err-name", Label)
        await wait_until(pilot, lambda: "control characters" in str(error.render()), "refusal")
        assert "(found \\x1b)" in str(error.render())
        assert app.screen is form

    run_as_maya(tui_desk, script)
    assert table_counts(tui_desk) == with_login(before)
