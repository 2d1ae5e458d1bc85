"""A vertical timeline: steps in order, each reached one with its time, the current one marked,
and a note under it (an escalation's estimated resolution date).

The caller gives the steps already worded (times in the zone it shows); colours come from the
theme through component classes in ``DEFAULT_CSS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

REACHED = "✔"
CURRENT = "▶"
PENDING = "○"


@dataclass(frozen=True)
class TimelineStep:
    """One step: its name, when it was reached ("" when not yet) and whether it is current."""

    name: str
    when: str
    current: bool = False


class Timeline(Widget):
    """Steps top to bottom; set them with ``show``."""

    COMPONENT_CLASSES = {
        "timeline--reached",
        "timeline--current",
        "timeline--pending",
        "timeline--note",
    }
    DEFAULT_CSS = """
    Timeline { height: auto; width: 1fr; }
    Timeline > .timeline--reached { color: $success; }
    Timeline > .timeline--current { color: $accent; text-style: bold reverse; }
    Timeline > .timeline--pending { color: $text-muted; }
    Timeline > .timeline--note { color: $text; text-style: italic; }
    """

    steps: reactive[tuple[TimelineStep, ...]] = reactive((), layout=True)
    """The steps, first to last."""
    note: reactive[str] = reactive("", layout=True)
    """A line under the steps; none when empty."""

    def show(self, steps: Sequence[TimelineStep], *, note: str = "") -> None:
        self.steps = tuple(steps)
        self.note = note

    def render(self) -> Text:
        width = max((len(step.name) for step in self.steps), default=0)
        styles = {
            name: self.get_component_rich_style(f"timeline--{name}")
            for name in ("reached", "current", "pending", "note")
        }
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        for row, step in enumerate(self.steps):
            if row:
                text.append("\n")
            if step.current:
                mark, style = CURRENT, styles["current"]
            elif step.when:
                mark, style = REACHED, styles["reached"]
            else:
                mark, style = PENDING, styles["pending"]
            text.append(f"{mark} {step.name:{width}}  {step.when}".rstrip(), style=style)
        if self.note:
            text.append(("\n" if self.steps else "") + self.note, style=styles["note"])
        return text
