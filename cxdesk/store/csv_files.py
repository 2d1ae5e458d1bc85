"""Reading CSV files for imports (contacts, survey responses), every row with its line number.

A file that cannot be used at all (missing, not a regular file, over 20 MB, not UTF-8, no
header, a column named twice) is a ``DeskError``: one line, nothing imported. A row that is
wrong is a ``RowProblem`` naming its line, so an import keeps the good rows and reports the
bad ones.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cxdesk.errors import DeskError
from cxdesk.i18n import _, ngettext
from cxdesk.store.user_files import read_regular_file

if TYPE_CHECKING:
    from _csv import Reader

MAX_IMPORT_BYTES = 20 * 1024 * 1024
"""The largest CSV file an import reads (about 100,000 rows of a contact list)."""


@dataclass(frozen=True)
class CsvRow:
    """One data row: the file line it starts on and its values by (stripped) column name."""

    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return _("line {line}: {problem}").format(line=self.line, problem=self.message)


@dataclass
class ImportReport:
    """What an import did: rows created and updated, and the rows refused with why."""

    created: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def line(self, rows: Literal["contact", "response"]) -> str:
        """The import's summary in the current language ("3 contacts imported, 1 updated, 0
        rows refused"), ``rows`` saying what was imported."""
        n = self.created
        if rows == "contact":
            imported = ngettext("{n} contact imported", "{n} contacts imported", n)
        else:
            imported = ngettext("{n} response imported", "{n} responses imported", n)
        parts = [imported.format(n=n)]
        if self.updated:
            parts.append(_("{n} updated").format(n=self.updated))
        refused = len(self.problems)
        parts.append(ngettext("{n} row refused", "{n} rows refused", refused).format(n=refused))
        return _(", ").join(parts)


@dataclass(frozen=True)
class CsvFile:
    columns: list[str]
    rows: list[CsvRow]
    problems: list[RowProblem]


def read_csv(path: Path) -> CsvFile:
    """The header and rows of ``path``; blank lines are skipped, ragged rows are problems.

    Only a regular file of at most ``MAX_IMPORT_BYTES`` is read (``read_regular_file``: a
    symbolic link, a FIFO or a device is refused, never followed, waited on or read for
    ever). Its text is split into rows by the csv module as a file opened with
    ``newline=''`` would be: a line ends at CRLF, CR or LF only, so other separators (U+2028,
    U+0085, form feed...; every one ``str.splitlines`` splits on) stay inside their values
    and line numbers are the file's.
    """
    content = read_regular_file(path, limit=MAX_IMPORT_BYTES, what="CSV file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DeskError(
            _("{path} is not UTF-8 text (save the CSV as UTF-8)").format(path=path)
        ) from None
    return _parse(path, csv.reader(io.StringIO(text, newline=""), strict=True))


def _parse(path: Path, reader: Reader) -> CsvFile:
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
    except csv.Error as exc:
        raise DeskError(
            _("{path}: line {line_num}: {exc}").format(path=path, line_num=reader.line_num, exc=exc)
        ) from None
    if header is None:
        raise DeskError(
            _("{path} is empty: its first line must name the columns").format(path=path)
        )
    columns = [cell.strip() for cell in header]
    seen: set[str] = set()
    for column in columns:
        if not column:
            raise DeskError(
                _("{path}: line {line_num}: a column has no name").format(
                    path=path, line_num=reader.line_num
                )
            )
        if column.casefold() in seen:
            raise DeskError(
                _("{path}: line {line_num}: column {column!r} appears twice").format(
                    path=path, line_num=reader.line_num, column=column
                )
            )
        seen.add(column.casefold())
    rows: list[CsvRow] = []
    problems: list[RowProblem] = []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(start, _("not valid CSV ({reason})").format(reason=exc)))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            problems.append(
                RowProblem(
                    start,
                    _("has {n} values but the header names {columns}").format(
                        n=len(cells), columns=len(columns)
                    ),
                )
            )
            continue
        cells += [""] * (len(columns) - len(cells))
        rows.append(CsvRow(start, {c: v.strip() for c, v in zip(columns, cells, strict=True)}))
    return CsvFile(columns, rows, problems)
