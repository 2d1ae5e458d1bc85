"""A ticket's conversation top to bottom: one block per entry, each saying in words who it is
from and for, so an internal note is never mistaken for what the customer read.

Every block starts with its badge (``INTERNAL``, ``OUTGOING``, ``INCOMING``, ``EVENT``) and a
line the caller words (author, channel, delivery status, time), then the text and the files.
The kinds differ by that badge first; the border, its side and the colours (theme variables,
``DEFAULT_CSS``) only repeat it. Text is shown as the terminal may get it (``printable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from cxdesk.i18n import N_, _
from cxdesk.text import printable

BADGES = {
    "note": N_("INTERNAL"),
    "reply": N_("OUTGOING"),
    "customer": N_("INCOMING"),
    "event": N_("EVENT"),
}
EMPTY = N_("No messages yet.")


@dataclass(frozen=True)
class ConversationEntry:
    """One block: its kind (note, reply, customer, event), header line, text and file lines."""

    kind: str
    header: str
    body: str
    files: tuple[str, ...] = ()


def entry_text(entry: ConversationEntry) -> Text:
    """A block's content: badge and header in bold, then the text, then one line per file."""
    text = Text(end="")
    badge = _(BADGES[entry.kind]) if entry.kind in BADGES else entry.kind.upper()
    text.append(f"{badge} ", style="bold reverse")
    text.append(f" {printable(entry.header, lines=False)}", style="bold")
    if entry.body:
        text.append("\n" + printable(entry.body))
    for line in entry.files:
        text.append("\n" + printable(line, lines=False), style="italic")
    return text


class Conversation(Vertical):
    """The entries, oldest first; set them with ``show``."""

    DEFAULT_CSS = """
    Conversation { height: auto; }
    Conversation > Static { height: auto; padding: 0 1; margin-bottom: 1; }
    Conversation > .note { border-left: thick $warning; background: $warning 10%; }
    Conversation > .reply { border-left: thick $success; }
    Conversation > .customer { border-right: thick $accent; background: $accent 10%; }
    Conversation > .event { color: $text-muted; }
    Conversation > .empty { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[ConversationEntry, ...] | None = None

    def show(self, entries: Sequence[ConversationEntry]) -> None:
        """Draw ``entries`` in place of what was shown (nothing to do when they are the same:
        a long conversation is not rebuilt for every change of its ticket)."""
        if tuple(entries) == self._shown:
            return
        self._shown = tuple(entries)
        with self.app.batch_update():
            self.remove_children()
            if not entries:
                self.mount(Static(_(EMPTY), classes="empty"))
                return
            self.mount_all(
                Static(entry_text(entry), classes=entry.kind, markup=False) for entry in entries
            )
