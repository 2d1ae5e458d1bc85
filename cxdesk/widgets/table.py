"""``DeskTable``: Textual's DataTable, with column widths that always reach the screen.

DataTable measures new rows' cells when idle. If the table is drawn between adding rows and
that idle pass (a refresh that lands in between), the rows are cached as drawn with the old
column widths, and the cache key holds no widths: the table stays cut short ("Stats iQ" shown
as "Stat") until something else changes it. Seen in the queues screen's snapshot test, about
one run in four. After an idle pass that re-measured the columns, the cached rows are dropped
and the table drawn again.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from textual import events
from textual.widgets import DataTable

CellType = TypeVar("CellType")


class DeskTable(DataTable[CellType], Generic[CellType]):
    async def _on_idle(self, event: events.Idle) -> None:
        remeasure = self._require_update_dimensions or bool(self._updated_cells)
        await super()._on_idle(event)
        if remeasure:
            self._clear_caches()
            self.refresh()
