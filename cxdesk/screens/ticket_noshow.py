"""The ticket screen's no-show key (``n``): the customer of a pulled ticket is not there.

A confirm dialog first, since it texts the customer ("we called you") or, past the desk's
recalls, resolves the ticket as no-show: ``store.noshow.no_show`` in a worker through
``unit_of_work`` (its workflows queue the SMS). ``TicketScreen`` binds the key and shows it in
the Footer only for an open ticket someone owns; whatever the Footer shows, the store decides
(only the owner or an admin; one line otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import SystemCommand

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.i18n import _
from cxdesk.screens.ticket_conversation import TicketConversationKeys
from cxdesk.store.noshow import no_show
from cxdesk.widgets.confirm_dialog import ConfirmDialog


class TicketNoShowKey(TicketConversationKeys):
    """What the no-show key of ``TicketScreen`` does (see the module)."""

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield from super().palette_commands()
        yield SystemCommand(_("No-show"), _("The customer is not there: recall them (n)"),
                            self.action_noshow)  # fmt: skip

    def noshow_applies(self) -> bool:
        """Whether the Footer offers the key: an open ticket someone owns."""
        view = self.view
        return view is not None and not view.closed and bool(view.record.get("owner"))

    def action_noshow(self) -> None:
        question = _(
            "No-show on {key}? The customer is texted that you called them and the ticket "
            "goes back to the head of its queue (or, after the desk's recalls, is resolved as "
            "no-show)."
        ).format(key=self.key)
        yes = _("Enter or y: no-show")
        self.app.push_screen(ConfirmDialog(question, yes=yes), self._noshow)

    def _noshow(self, confirmed: bool | None) -> None:
        if confirmed:
            self.store_noshow()

    def store_noshow(self) -> None:
        def store() -> str:
            with unit_of_work(self.engine) as session:
                done = no_show(session, actor=self.user, key=self.key)
            return (
                _("{key} resolved as no-show").format(key=done.key)
                if done.resolved
                else _("{key} back at the head of its queue (recall {n})").format(
                    key=done.key, n=done.recalls
                )
            )

        def stored(said: str) -> None:
            self.notify(said, markup=False)
            self.reload()

        self.in_thread(store, stored, group="ticket-noshow")
