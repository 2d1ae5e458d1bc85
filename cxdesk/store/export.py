"""Exporting the filtered ticket list to .csv or .xlsx, streamed a batch at a time.

Both formats carry the list's columns (``views.LIST_COLUMNS``) in order. Times are written
in the local time zone, as the screens show them: in .xlsx as real date cells (Excel and
LibreOffice sort and filter them as dates), in .csv as ISO 8601 with the UTC offset. The file
is written next to its destination and moved into place only when complete, so a failed
export never leaves half a file behind.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import Engine

from cxdesk.errors import DeskError
from cxdesk.locations import PRIVATE_FILE_MODE
from cxdesk.store.db import read_session
from cxdesk.store.views import LIST_COLUMNS, Sort, TicketFilter, TicketRow, iter_tickets

FORMATS = ("csv", "xlsx")
XLSX_DATE_FORMAT = "yyyy-mm-dd hh:mm"
SHEET_TITLE = "Tickets"


def _local(value: datetime) -> datetime:
    return value.astimezone()


def _values(row: TicketRow) -> list[Any]:
    return [getattr(row, name) for name in LIST_COLUMNS]


def _write_csv(path: Path, batches: Iterable[Sequence[TicketRow]]) -> int:
    written = 0
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # BOM: Excel reads UTF-8
        writer = csv.writer(handle)
        writer.writerow(LIST_COLUMNS.values())
        for batch in batches:
            for row in batch:
                writer.writerow(
                    _local(v).isoformat(timespec="seconds") if isinstance(v, datetime) else v
                    for v in _values(row)
                )
                written += 1
    return written


def _write_xlsx(path: Path, batches: Iterable[Sequence[TicketRow]]) -> int:
    workbook = Workbook(write_only=True)  # rows go straight to the file, not kept in memory
    sheet = workbook.create_sheet(SHEET_TITLE)
    sheet.append(list(LIST_COLUMNS.values()))
    written = 0
    for batch in batches:
        for row in batch:
            cells: list[Any] = []
            for value in _values(row):
                if isinstance(value, datetime):
                    # Excel has no time zones: the local wall-clock time, as a date cell.
                    cell = WriteOnlyCell(sheet, value=_local(value).replace(tzinfo=None))
                    cell.number_format = XLSX_DATE_FORMAT
                    cells.append(cell)
                else:
                    cells.append(value)
            sheet.append(cells)
            written += 1
    workbook.save(path)
    return written


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
        raise DeskError(f"Export format must be csv or xlsx, not {fmt or 'nothing'!r}")
    output = output.expanduser()
    if output.is_dir():
        raise DeskError(f"{output} is a folder; give a file name")
    if not output.parent.is_dir():
        raise DeskError(f"Folder {output.parent} does not exist")
    # Owner-only (0600) whatever the umask: an export holds customer data.
    handle, temporary = tempfile.mkstemp(prefix=".cxdesk-export-", dir=output.parent)
    os.fchmod(handle, PRIVATE_FILE_MODE)
    os.close(handle)
    temp_path = Path(temporary)
    try:
        with read_session(engine) as session:
            batches = iter_tickets(session, flt, sort=sort)
            writer = _write_csv if fmt == "csv" else _write_xlsx
            written = writer(temp_path, batches)
        temp_path.replace(output)
    except OSError as exc:
        raise DeskError(f"Cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        temp_path.unlink(missing_ok=True)
    return written
