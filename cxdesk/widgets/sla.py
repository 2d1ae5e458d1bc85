"""A ticket's SLA on screen: its words (``store.sla_display``) in the theme's colours, for the
list, the kanban's cards, the queues and the waiting list (``sla_text``), and ``SlaTargets``,
the ticket screen's lines, one per target, redrawn as the clock moves.

The words carry the state on their own (``breached``, ``warning``...), so the text reads
without colour; colour comes from the theme: a breach and a warning are badges (``$error`` /
``$warning`` behind, bold contrasting text on it, so they stay readable on a highlighted row or
card and in the high-contrast theme), on track and met in ``$text-success``, paused plain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color, ColorParseError
from textual.containers import Vertical
from textual.widgets import Label, Static

from cxdesk.i18n import _
from cxdesk.store.sla import SlaState, SlaView
from cxdesk.store.sla_display import SlaTimes, sla_words, target_lines

BADGES = {SlaState.breached: "error", SlaState.warning: "warning"}
"""States shown as a badge: the theme's colour behind, its contrasting text on it (readable
on a highlighted row or card too)."""
TONES = {SlaState.on_track: "text-success", SlaState.met: "text-success"}
"""States shown in a text colour; a paused one is plain text."""


def state_style(state: SlaState, theme: Mapping[str, str]) -> Style:
    """The style of a state in the app's theme (``App.theme_variables``)."""
    try:
        if state in BADGES:
            back = Color.parse(theme.get(BADGES[state], ""))
            text = back.get_contrast_text(alpha=1.0)
            return Style(color=text.rich_color, bgcolor=back.rich_color, bold=True)
        if state in TONES:
            return Style(color=Color.parse(theme.get(TONES[state], "")).rich_color)
    except ColorParseError:  # a theme without that colour: the words alone
        pass
    return Style(bold=state in BADGES)


def sla_text(
    view: SlaView | None, now: datetime, theme: Mapping[str, str], *, compact: bool = False
) -> Text:
    """``breached · 12m over`` in the breach's style; empty without a policy."""
    if view is None:
        return Text("")
    return Text(sla_words(view, now, compact=compact), style=state_style(view.state, theme))


class SlaTargets(Vertical):
    """The ticket screen's service level: each target's due time and state, redrawn from the
    loaded columns every ``redraw_seconds`` (no read: the state changes with the clock) and
    when the theme changes."""

    DEFAULT_CSS = """
    SlaTargets { height: auto; margin-top: 1; }
    SlaTargets .section { text-style: bold; }
    """
    redraw_seconds = 5.0

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.times: SlaTimes | None = None
        """The ticket's SLA columns as last read; None: no policy (the panel is hidden)."""

    def compose(self) -> ComposeResult:
        yield Label(_("Service level"), classes="section")
        yield Static("", id="sla-lines")

    def on_mount(self) -> None:
        self.display = False
        self.set_interval(self.redraw_seconds, self.redraw)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.redraw())

    def show(self, times: SlaTimes | None) -> None:
        self.times = times
        self.redraw()

    def redraw(self) -> None:
        now = self.clock()
        view = self.times.view(now) if self.times is not None else None
        self.display = view is not None
        if view is None:
            return
        theme = self.app.theme_variables
        lines = Text()
        for name, due, happened, state in target_lines(view, now):
            if lines:
                lines.append("\n")
            # TRANSLATORS: between an SLA target and its due time ("Resolution  due 14:30")
            due_word = _("due")
            lines.append(f"{name.capitalize():16} {due_word} {due:12} ")
            lines.append(happened, style=state_style(state, theme))
        self.query_one("#sla-lines", Static).update(lines)

    @property
    def shown(self) -> str:
        """The lines as plain text (what a test or a screen reader reads)."""
        return str(self.query_one("#sla-lines", Static).render())
