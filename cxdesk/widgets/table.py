"""``DeskTable``: Textual's DataTable, with column widths that always reach the screen.

DataTable measures new rows' cells when idle. If the table is drawn between adding rows and
that idle pass (a refresh that lands in between), the rows are cached as drawn with the old
column widths, and the cache key holds no widths: the table stays cut short ("Stats iQ" shown
as "Stat") until something else changes it. Seen in the queues screen's snapshot test, about
one run in four. After an idle pass that re-measured the columns, the cached rows are dropped
and the table drawn again. A screen filling a small table can measure at once instead
(``measure_now``): its first draw is then right, and the idle pass has nothing left to do.

Every cell added is made ``printable`` first: customer text (a comment holding ``ESC [2J``
or an OSC 52 clipboard write) is shown as escapes, never passed to the terminal raw.

A table with no rows says so when given ``empty=`` (``widgets/empty_note.py``).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from cxdesk.text import printable
from cxdesk.widgets.empty_note import SaysWhenEmpty

CellType = TypeVar("CellType")


def printable_cell(cell: Any) -> Any:
    """A cell as the terminal may get it: text through ``printable`` (a styled ``Text``
    keeps its style), anything else as it is."""
    if isinstance(cell, str):
        return printable(cell)
    if isinstance(cell, Text) and printable(cell.plain) != cell.plain:
        return Text(printable(cell.plain), style=cell.style, end=cell.end)
    return cell


class DeskTable(SaysWhenEmpty, DataTable[CellType], Generic[CellType]):
    def add_row(
        self,
        *cells: CellType,
        height: int | None = 1,
        key: str | None = None,
        label: Any = None,
    ) -> RowKey:
        shown = [printable_cell(cell) for cell in cells]
        return super().add_row(*shown, height=height, key=key, label=label)

    def measure_now(self) -> bool:
        """Measure the rows and cells changed since the last idle pass now (DataTable's own
        idle pass), so that the next refresh draws them at their widths, once; whether there
        was anything to measure. Every new cell is measured: for tables of a few rows (a
        screen's first fill), where waiting for the idle pass costs a second full draw."""
        if self._updated_cells:
            updated = self._updated_cells.copy()
            self._updated_cells.clear()
            self._update_column_widths(updated)
            remeasured = True
        else:
            remeasured = False
        if self._require_update_dimensions:
            self._require_update_dimensions = False
            new_rows = self._new_rows.copy()
            self._new_rows.clear()
            self._update_dimensions(new_rows)
            remeasured = True
        return remeasured

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable's _on_idle runs after this one (Textual calls each class's): nothing left.
        if self.measure_now():
            self._clear_caches()
            self.refresh()
