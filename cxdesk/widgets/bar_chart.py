"""A horizontal bar chart drawn with block characters, no plotting library: one labelled bar
per row and a note after it (the figure and its count).

Values run from ``low`` to ``high``. With ``low`` at zero (CSAT %) every bar grows right from
the left edge, to an eighth of a cell; with ``low`` below zero (NPS, -100 to 100) bars grow
right or left from a zero line, to half a cell. Colours come from the theme (component classes
in ``DEFAULT_CSS``). Without bars it shows its ``empty`` text instead of a blank chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from cxdesk.i18n import N_, _

FULL = "█"
EIGHTHS = ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")
"""A bar's last cell growing right, by eighths of a cell."""
RIGHT_HALF = "▐"
"""A bar's last half cell growing left."""
AXIS = "│"
MIN_TRACK = 10
MAX_TRACK = 60
"""Cells of the longest bar: wider, the figures drift too far from the bars to read."""
LABEL_MAX = 24


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""


def bar_cells(value: float, *, low: float, high: float, width: int) -> tuple[int, str]:
    """Where a bar starts on a track of ``width`` cells and the characters it is drawn with."""
    span = high - low
    origin = round(width * -low / span) if low < 0 else 0
    cells = min(abs(value), span) / span * width
    if value >= 0:
        eighths = min(round(cells * 8), (width - origin) * 8)
        return origin, FULL * (eighths // 8) + EIGHTHS[eighths % 8]
    halves = min(round(cells * 2), origin * 2)
    drawn = RIGHT_HALF * (halves % 2) + FULL * (halves // 2)
    return origin - len(drawn), drawn


class BarChart(Widget):
    """Bars of ``low``..``high``; set ``bars`` (and ``empty``) to draw."""

    COMPONENT_CLASSES = {
        "bar-chart--positive",
        "bar-chart--negative",
        "bar-chart--axis",
        "bar-chart--empty",
    }
    DEFAULT_CSS = """
    BarChart { height: auto; width: 1fr; }
    BarChart > .bar-chart--positive { color: $success; }
    BarChart > .bar-chart--negative { color: $error; }
    BarChart > .bar-chart--axis { color: $text-muted; }
    BarChart > .bar-chart--empty { color: $text-muted; text-style: italic; }
    """

    bars: reactive[tuple[Bar, ...]] = reactive((), layout=True)
    """The rows, top to bottom."""
    empty: reactive[str] = reactive(N_("Nothing to show yet"), layout=True)
    """Shown instead of the chart when there are no bars."""

    def __init__(
        self,
        *,
        low: float = 0.0,
        high: float = 100.0,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        if not low < high:
            raise ValueError("a bar chart's low must be below its high")
        self.low = low
        self.high = high

    def show(self, bars: Sequence[Bar], *, empty: str | None = None) -> None:
        """Draw these bars (and say ``empty`` when there are none)."""
        if empty is not None:
            self.empty = empty
        self.bars = tuple(bars)

    def render(self) -> Text:
        if not self.bars:
            return Text(_(self.empty), style=self.get_component_rich_style("bar-chart--empty"))
        label_width = min(LABEL_MAX, max(len(bar.label) for bar in self.bars))
        note_width = max(len(bar.note) for bar in self.bars)
        room = self.content_size.width - label_width - note_width - 2
        track = max(MIN_TRACK, min(MAX_TRACK, room))
        positive = self.get_component_rich_style("bar-chart--positive")
        negative = self.get_component_rich_style("bar-chart--negative")
        axis = self.get_component_rich_style("bar-chart--axis")
        chart = Text(no_wrap=True, overflow="crop", end="")
        for row, bar in enumerate(self.bars):
            if row:
                chart.append("\n")
            label = (
                bar.label if len(bar.label) <= label_width else bar.label[: label_width - 1] + "…"
            )
            chart.append(label.ljust(label_width) + " ")
            start, drawn = bar_cells(bar.value, low=self.low, high=self.high, width=track)
            cells = [" "] * track
            if self.low < 0:
                cells[min(start + len(drawn) if bar.value < 0 else start, track - 1)] = AXIS
            chart.append("".join(cells[:start]), style=axis)
            chart.append(drawn, style=positive if bar.value >= 0 else negative)
            chart.append("".join(cells[start + len(drawn) :]), style=axis)
            chart.append(" " + bar.note)
        return chart
