"""Hostile and broken input: every case ends in a clear error (or exact storage) and no damage.

- Property tests (hypothesis) of the piped-text renderer and the condition evaluator: no input
  adds an email header line, expands a value as a placeholder, or raises; and of the text
  rules (``cxdesk.text``): no text made ``printable`` can drive a terminal, and JSON made
  printable parses back exactly.
- Check-in answers with control characters, 10 MB strings, right-to-left and emoji text, on
  SQLite and PostgreSQL.
- The desk's SQLite file locked by another program, read-only, or not a database: one line from
  the CLI, and every row still there afterwards.

(Hostile files, names, self-triggering workflows and terminal escapes through the CLI and the
TUI: tests/test_hostile_input.py. Seed files with wrong types, unknown teams and duplicate
names: tests/test_cli.py. SMTP closing
mid-message and Twilio answering 429/500: tests/test_channels.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.cli import common
from cxdesk.demo import build_demo
from cxdesk.engine.conditions import MAX_DEPTH, OPERATORS, condition_problems, evaluate
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.piped import PipeContext, render, template_problems
from cxdesk.errors import ValidationFailed
from cxdesk.store.db import make_engine, read_session
from cxdesk.store.directory import get_user
from cxdesk.store.models import Ticket, TicketData
from cxdesk.store.surveys import submit_response, validate_answers
from cxdesk.text import json_printable, printable, text_problem
from tests.cli_helpers import (
    Cli,
    CliResult,
    assert_one_error_line,
    prove_as_a_script,
    run_main,
    table_counts,
)
from tests.desk import build_small_desk

# -- piped text -------------------------------------------------------------------------------

# Any text at all, including CR, LF, NEL, the Unicode line separators and "${...}" look-alikes.
pieces = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\r", "\n", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "$", "{", "}"]),
    st.sampled_from(["${q://a}", "${tck://Field/key}", "%0d%0a", "&", "=", "#", "?", " "]),
)
nasty_text = st.lists(pieces, max_size=30).map("".join)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


def context_with(values: dict[str, str]) -> PipeContext:
    return PipeContext(
        ticket={"key": values.get("key", "EXP-1"), "ownerName": values.get("owner", "")},
        data=values,
        answers=values,
        embedded=values,
    )


@given(template=nasty_text, values=st.dictionaries(names, nasty_text, max_size=4))
def test_a_rendered_header_never_holds_a_line_break(template: str, values: dict[str, str]) -> None:
    rendered = render(template, context_with(values), header=True)
    assert "\r" not in rendered and "\n" not in rendered


@given(value=nasty_text)
def test_a_piped_value_is_never_expanded_as_a_template(value: str) -> None:
    context = context_with({"a": value, "b": "SECRET"})
    assert render("${q://a}", context) == value  # "${q://b}" inside it stays literal
    assert "SECRET" not in render("x ${tck://kv/a} y", context).replace(value, "")


@given(first=nasty_text, last=nasty_text, owner=nasty_text)
def test_link_parameters_decode_back_exactly(first: str, last: str, owner: str) -> None:
    template = (
        "Rate us: https://survey.example.com/jfe/form/SV_1?SupportRep=${tck://Field/ownerName}"
        "&CustomerName=${tck://kv/Firstname}%20${tck://kv/Lastname}&Ticket=${tck://Field/key}"
    )
    context = PipeContext(
        ticket={"ownerName": owner, "key": "EXP-7"}, data={"Firstname": first, "Lastname": last}
    )
    rendered = render(template, context)
    link = rendered.removeprefix("Rate us: ")
    assert link.split() == [link], "a piped value broke the link in two"
    query = parse_qs(urlsplit(link).query, keep_blank_values=True, strict_parsing=False)
    assert query["SupportRep"] == [owner]
    assert query["CustomerName"] == [f"{first} {last}"]
    assert query["Ticket"] == ["EXP-7"]


@given(template=st.text(max_size=200))
def test_checking_any_template_lists_problems_and_never_raises(template: str) -> None:
    problems = template_problems(template, questions=["email"])
    assert all(isinstance(problem, str) and problem for problem in problems)
    if "${" not in template:
        assert problems == []


# -- the text rules: names and terminals --------------------------------------------------------

terminal_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x1b[2J", "\x1b]52;c;SGk=\x07", "\x9b31m", "\r", "\r\n", "\u202e"]),
    ),
    max_size=30,
).map("".join)


@given(text=terminal_text)
def test_printable_text_never_holds_a_terminal_control(text: str) -> None:
    assert text_problem(printable(text, lines=False)) is None
    assert text_problem(printable(text), lines=True) is None
    if text_problem(text) is None:
        assert printable(text) == text  # clean text is shown exactly


@given(value=st.recursive(terminal_text, lambda inner: st.lists(inner, max_size=3), max_leaves=5))
def test_printable_json_parses_back_exactly(value: object) -> None:
    document = json_printable(json.dumps(value, ensure_ascii=False))
    assert json.loads(document) == value
    assert text_problem(document) is None


@given(name=terminal_text)
def test_a_name_is_refused_exactly_when_it_holds_a_control(name: str) -> None:
    problem = text_problem(name)
    assert (problem is None) == (printable(name, lines=False) == name)
    if problem is not None:
        assert text_problem(problem) is None  # the message itself is safe to print
        with pytest.raises(ValidationFailed):
            answer = f"Ada{name}Lovelace"  # inside: only surrounding space is trimmed
            validate_answers([{"id": "first_name", "type": "text", "max_length": 500}],
                             {"first_name": answer}, phone_region="US")  # fmt: skip


# -- conditions -------------------------------------------------------------------------------

fields = st.sampled_from(["q://score", "q://product", "tck://Field/priority", "tck://kv/Email"])
leaf = st.fixed_dictionaries(
    {"field": fields, "op": st.sampled_from(OPERATORS), "value": st.one_of(nasty_text, st.none())}
)
conditions = st.recursive(
    st.one_of(st.just({}), leaf),
    lambda parts: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(parts, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(parts, max_size=3)),
    ),
    max_leaves=12,
)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | nasty_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=10,
)


@given(condition=conditions, values=st.dictionaries(fields, nasty_text))
def test_any_valid_condition_evaluates_without_raising(
    condition: dict[str, Any], values: dict[str, str]
) -> None:
    assert condition_problems(condition) == []
    assert evaluate(condition, lambda name: values.get(name, "")) in (True, False)


@given(anything=json_like)
def test_checking_any_data_as_a_condition_never_raises(anything: object) -> None:
    problems = condition_problems(anything)
    assert all(isinstance(problem, str) for problem in problems)


@given(actual=nasty_text, expected=nasty_text, op=st.sampled_from(["is", "is not"]))
def test_is_and_is_not_are_exact_opposites(actual: str, expected: str, op: str) -> None:
    holds = evaluate({"field": "q://x", "op": op, "value": expected}, lambda _: actual)
    assert holds == ((actual == expected) == (op == "is"))


@given(a=st.integers(-1000, 1000), b=st.integers(-1000, 1000))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_number_comparisons_compare_numbers_not_text(a: int, b: int) -> None:
    def holds(op: str) -> bool:
        return evaluate({"field": "q://score", "op": op, "value": f" {b} "}, lambda _: str(a))

    assert (holds("<"), holds("<="), holds(">"), holds(">=")) == (a < b, a <= b, a > b, a >= b)


def test_a_thousand_deep_condition_is_refused_not_a_crash() -> None:
    condition: dict[str, Any] = {"field": "q://score", "op": "is", "value": "1"}
    for _ in range(1000):
        condition = {"all": [condition]}
    problems = condition_problems(condition)
    assert problems and f"more than {MAX_DEPTH} deep" in problems[0]


# -- check-in answers -------------------------------------------------------------------------

GOOD = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "product": "360",
}
TEN_MB = "x" * (10 * 1024 * 1024)


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def check_in(engine: Engine, **answers: str) -> int:
    with unit_of_work(engine) as s:
        response = submit_response(
            s, actor=get_user(s, "vera"), survey_name="checkin", answers={**GOOD, **answers}
        )
    assert response.id is not None
    return response.id


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", TEN_MB, "too long"),
        ("notes", TEN_MB, "too long"),
        ("email", TEN_MB + "@example.com", "too long"),
        ("phone", TEN_MB, "too long"),
        ("product", TEN_MB, "too long"),
        ("first_name", "Ada\x1b[31m", "control characters"),
        ("notes", "line one\nline two\x07", "control characters"),
        ("last_name", "Love\rlace", "control characters"),
        ("email", "ada@example.com\r\nBcc: all@example.com", None),
    ],
    ids=[
        "10MB-name",
        "10MB-notes",
        "10MB-email",
        "10MB-phone",
        "10MB-product",
        "ansi-escape",
        "bell-in-notes",
        "cr-in-name",
        "header-in-email",
    ],  # fmt: skip
)
def test_hostile_answers_are_refused_and_nothing_is_saved(
    desk: Engine, field: str, value: str, message: str | None
) -> None:
    before = table_counts(desk)
    with pytest.raises(ValidationFailed) as failure:
        check_in(desk, **{field: value})
    assert set(failure.value.errors) == {field}
    text = failure.value.errors[field]
    assert len(text) < 200 and "\n" not in text  # one readable line, not the value echoed
    if message:
        assert message in text
    assert table_counts(desk) == before


def test_a_long_answer_keeps_its_line_breaks_and_crlf_becomes_lf(desk: Engine) -> None:
    response_id = check_in(desk, notes="line one\r\nline two\n\tindented")
    with read_session(desk) as s:
        ticket = s.exec(select(Ticket).where(Ticket.response_id == response_id)).one()
    assert ticket.customer_comment == "line one\nline two\n\tindented"


def test_right_to_left_and_emoji_answers_are_kept_exactly(desk: Engine) -> None:
    first, last = "\u0644\u064a\u0644\u0649", "O'Neil \U0001f469\u200d\U0001f4bb"  # Arabic, ZWJ
    notes = "\u05e9\u05dc\u05d5\u05dd \u2014 needs help \U0001f680\nsecond line"
    response_id = check_in(desk, first_name=first, last_name=last, notes=notes)
    with read_session(desk) as s:
        ticket = s.exec(select(Ticket).where(Ticket.response_id == response_id)).one()
        data = {
            row.name: row.value
            for row in s.exec(select(TicketData).where(TicketData.ticket_id == ticket.id)).all()
        }
    assert ticket.title == f"{first} {last} needs help with 360"
    assert data["Firstname"] == first and data["Lastname"] == last
    assert ticket.customer_comment == notes


# -- the database file: locked, read-only, not a database -------------------------------------


@pytest.fixture
def sqlite_desk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[Path, Cli]]:
    """The demo desk in a SQLite file of its own, and the CLI pointed at it."""
    folder = tmp_path / "desk"
    folder.mkdir()
    path = folder / "cxdesk.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    build_demo(engine, reset=False)
    engine.dispose()  # no connection left open: the WAL is checkpointed and removed
    monkeypatch.setenv("CXDESK_DATABASE_URL", url)
    prove_as_a_script(monkeypatch)
    for console in (common.console, common.err_console):
        monkeypatch.setattr(console, "width", 200)
    yield path, partial(run_main, capsys)
    common.engine_for(url).dispose()
    common.engine_for.cache_clear()


def rows_of(path: Path) -> dict[str, int]:
    engine = make_engine(f"sqlite:///{path}")
    try:
        return table_counts(engine)
    finally:
        engine.dispose()


def test_a_locked_database_is_one_line_and_changes_nothing(
    sqlite_desk: tuple[Path, Cli], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, cli = sqlite_desk
    before = rows_of(path)
    monkeypatch.setattr("cxdesk.store.db.BUSY_TIMEOUT_MS", 300)  # wait 0.3 s, not 10
    common.engine_for.cache_clear()
    locker = subprocess.Popen(
        [sys.executable, "-c", (
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True)\n"
            "sys.stdin.read()\n"  # hold the lock until the test closes stdin
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        result = cli("ticket", "pull", "360", "--as", "maya")
    finally:
        assert locker.stdin is not None
        locker.stdin.close()
        locker.wait(timeout=30)
    assert_one_error_line(result, "busy", "nothing was changed")
    assert rows_of(path) == before
    assert cli("ticket", "pull", "360", "--as", "maya").exit_code == 0  # and works once free


def _make_read_only(path: Path) -> list[str]:
    """Make the desk file and its folder unwritable even for root; the undo command."""
    targets = [str(path), str(path.parent)]
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        return ["chmod", "u+w", *targets]
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", *targets]).returncode != 0:
        pytest.skip("running as root where chattr +i is unavailable: cannot make a read-only file")
    return [chattr, "-i", *targets]


def test_a_read_only_database_is_one_line_and_loses_nothing(
    sqlite_desk: tuple[Path, Cli],
) -> None:
    path, cli = sqlite_desk
    before = rows_of(path)
    undo = _make_read_only(path)
    try:
        pulled = cli("ticket", "pull", "360", "--as", "maya")
        listed = cli("queue", "list")
    finally:
        subprocess.run(undo, check=True)
    assert_one_error_line(pulled, "read-only", "nothing was changed")
    assert_one_error_line(listed, "read-only")
    assert rows_of(path) == before


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_file_that_is_not_a_desk_database_is_one_line_and_left_alone(
    sqlite_desk: tuple[Path, Cli], damage: str
) -> None:
    path, cli = sqlite_desk
    if damage == "garbage":
        path.write_bytes(b"this is not a database " * 500)
    else:
        path.write_bytes(path.read_bytes()[:8192])  # header kept, most pages gone
    content = path.read_bytes()
    results: list[CliResult] = [
        cli("queue", "list"),
        cli("ticket", "pull", "360", "--as", "maya"),
        cli("db", "upgrade"),
    ]
    for result in results:
        line = assert_one_error_line(result)
        assert "database" in line
    assert path.read_bytes() == content  # nothing "repaired" over the user's file
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT count(*) FROM ticket").fetchone()
