"""``cxdesk batch FILE|-`` (cxdesk/cli/batch.py): many commands in one process, each line on its
own, refusals reported by line and changing nothing, one password check per user."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cxdesk.store.db import transaction
from cxdesk.store.directory import get_user
from tests.cli_helpers import Cli, table_counts
from tests.desk import build_small_desk

ADA = "--answer first_name=Ada --answer last_name=Lovelace --answer email=ada@example.com"


def ticket_count(engine: Engine) -> int:
    return table_counts(engine)["ticket"]


def test_each_line_runs_and_a_refused_line_changes_nothing(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    build_small_desk(engine)
    script = tmp_path / "commands.txt"
    script.write_text(
        "# two check-ins, the second one refused\n"
        f"checkin --as vera {ADA} --answer product=360\n"
        "\n"
        f"cxdesk checkin --as vera {ADA} --answer product=360 --answer email=not-an-email\n"
        "tickets list --json --as maya   # a comment after the command\n"
        "frobnicate\n"
        'checkin --answer "first_name=unclosed\n',
        encoding="utf-8",
    )
    result = cli("batch", str(script))

    assert result.exit_code == 1, str(result)
    assert "Traceback" not in result.output
    first_key, listed = result.stdout.split("\n", 1)
    assert first_key  # the key line 2's check-in printed
    assert [ticket["key"] for ticket in json.loads(listed)] == [first_key]
    errors = result.error_lines
    assert errors[0].startswith("line 4: Error: email: not a valid email address"), str(result)
    assert errors[1] == "line 6: Error: No such command 'frobnicate'."
    assert errors[2].startswith("line 7: Error: cannot split the line into words"), str(result)
    assert errors[3] == "batch: 5 commands; 3 failed (lines 4, 6, 7)"
    assert len(errors) == 4
    assert ticket_count(engine) == 1  # the refused check-in wrote nothing


def test_commands_from_stdin_all_done(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_small_desk(engine)
    lines = [f"checkin --as vera {ADA} --answer product=360"] * 3 + ["ticket pull 360 --as maya"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    result = cli("batch", "-")

    assert result.exit_code == 0, str(result)
    assert result.error_lines == ["batch: 4 commands; all done"]
    assert ticket_count(engine) == 3
    keys = result.stdout.split()
    assert len(keys) == 4 and keys[3] == keys[0]  # the pull takes the oldest


def test_stop_at_the_first_failure(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    build_small_desk(engine)
    script = tmp_path / "commands.txt"
    script.write_text(
        f"ticket pull Nowhere --as maya\ncheckin --as vera {ADA} --answer product=360\n",
        encoding="utf-8",
    )
    result = cli("batch", str(script), "--stop")

    assert result.exit_code == 1, str(result)
    assert result.error_lines[-1] == "batch: 1 command; 1 failed (line 1); stopped there"
    assert ticket_count(engine) == 0


def test_a_wrong_password_is_tried_once_not_once_per_line(
    cli: Cli, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_small_desk(engine)
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", "wrong")
    script = tmp_path / "commands.txt"
    script.write_text("tickets list --as maya\n" * 5, encoding="utf-8")
    before = table_counts(engine)
    result = cli("batch", str(script))

    assert result.exit_code == 1, str(result)
    assert result.error_lines[-1] == "batch: 5 commands; 5 failed (lines 1, 2, 3, 4, 5)"
    assert all("Unknown user or wrong password" in line for line in result.error_lines[:5])
    assert table_counts(engine)["login_failure"] - before["login_failure"] == 1


def test_a_batch_cannot_nest_or_open_the_desk(cli: Cli, engine: Engine, tmp_path: Path) -> None:
    build_small_desk(engine)
    script = tmp_path / "commands.txt"
    script.write_text(f"batch {script}\nrun --user maya\n", encoding="utf-8")
    result = cli("batch", str(script))

    assert result.exit_code == 1, str(result)
    assert result.error_lines[0].startswith("line 1: Error: `batch` cannot run in a batch")
    assert result.error_lines[1].startswith("line 2: Error: `run` cannot run in a batch")


def test_a_missing_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    result = cli("batch", str(tmp_path / "nope.txt"))
    assert result.exit_code == 1
    assert result.error_lines == [f"Error: No such file: {tmp_path / 'nope.txt'}"]


def test_one_lines_language_does_not_leak_into_the_next(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    """Each line speaks its acting user's language; a line that proves nobody, and the summary,
    speak the terminal's (English here)."""
    build_small_desk(engine)
    with transaction(engine) as session:
        get_user(session, "kenji").language = "ja"
    script = tmp_path / "commands.txt"
    script.write_text("ticket pull Nowhere --as kenji\nfrobnicate\n", encoding="utf-8")
    result = cli("batch", str(script))

    assert result.error_lines[0].startswith("1 行目：エラー："), str(result)
    assert result.error_lines[1] == "line 2: Error: No such command 'frobnicate'."
    assert result.error_lines[2] == "batch: 2 commands; 2 failed (lines 1, 2)"
