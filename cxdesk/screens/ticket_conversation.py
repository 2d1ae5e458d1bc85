"""The ticket screen's conversation keys: message the customer, save an attachment, open one
of the customer's other tickets. ``TicketScreen`` binds the keys; this class holds what they do.

- Message customer: a ``ChangeDialog`` for the text, the channel (only those the ticket has
  an address for) and files; it calls ``store.replies.reply_to_customer`` in the dialog's
  worker, and a refusal (no address, number opted out...) stays in the dialog as one line.
- Save attachment: which one (asked only when there are several), then the path, prefilled
  with a harmless version of its name in the home folder; an existing file is replaced only
  after a yes. The bytes are read and written in a worker, the file owner-only
  (``store.user_files.save_user_file``).
- Customer history: the table of the customer's other tickets; Enter opens the one under the
  cursor on top of this one (Escape comes back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePath

from textual import on
from textual.app import SystemCommand
from textual.widgets import DataTable, TabbedContent

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import Conflict
from cxdesk.i18n import _, ngettext
from cxdesk.screens.base import DeskScreen
from cxdesk.screens.ticket_view import TicketView
from cxdesk.store.conversation import AttachmentItem, attachment_content, attachment_text
from cxdesk.store.db import read_session
from cxdesk.store.replies import reply_to_customer
from cxdesk.store.tickets import get_ticket, read_attachment_files
from cxdesk.store.user_files import save_user_file
from cxdesk.text import printable
from cxdesk.widgets.change_dialog import ChangeDialog, ChangeRequest, DialogWords
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from cxdesk.widgets.prompt_dialog import PromptDialog


def message_words() -> DialogWords:
    """The message dialog's words, in the current language."""
    return DialogWords(
        pending=_("Sending…"), refused=_("Not sent"), hint=_("Enter sends · Escape cancels")
    )


LISTED_FILES = 8
"""Attachments listed in the "which one?" prompt; more are named by their number."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def suggested_file_name(item: AttachmentItem) -> str:
    """A name to offer for saving: the attachment's, reduced to letters, digits, ``._-``, no
    leading dot, never a path (``../../.bashrc`` becomes ``bashrc``)."""
    name = _UNSAFE.sub("_", PurePath(item.name.replace("\\", "/")).name).lstrip("._")
    return name[:100] or f"attachment-{item.n}"  # a file name: not translated


def message_channels(record: dict[str, object]) -> list[tuple[str, str]]:
    """The channels a message can go by, worded with the address it would go to."""
    choices = []
    if record.get("customer_email"):
        shown = _("email to {address}").format(address=record["customer_email"])
        choices.append((printable(shown, lines=False), "email"))
    if record.get("customer_phone"):
        shown = _("SMS to {number}").format(number=record["customer_phone"])
        choices.append((printable(shown, lines=False), "sms"))
    return choices


class TicketConversationKeys(DeskScreen):
    """What the conversation keys of ``TicketScreen`` do (see the module)."""

    key: str
    view: TicketView | None

    def palette_commands(self) -> Iterable[SystemCommand]:
        """The conversation keys by name in the command palette (``CxDeskApp``)."""
        yield SystemCommand(_("Message customer"), _("Write to this ticket's customer (m)"),
                            self.action_message_customer)  # fmt: skip
        yield SystemCommand(_("Save attachment"), _("Save one of this ticket's files (d)"),
                            self.action_save_attachment)  # fmt: skip
        yield SystemCommand(_("Customer history"), _("The customer's other tickets (h)"),
                            self.action_customer_history)  # fmt: skip

    def _loaded(self) -> TicketView | None:
        if self.view is None:
            self.notify(_("The ticket is still loading"), severity="warning")
        return self.view

    # -- message the customer ---------------------------------------------------------------

    def action_message_customer(self) -> None:
        view = self._loaded()
        if view is None:
            return
        choices = message_channels(view.record)
        if not choices:
            self.notify(_("{key} has no customer email or phone to write to").format(key=self.key),
                        severity="warning", markup=False)  # fmt: skip
            return

        def send(request: ChangeRequest) -> None:
            paths = [Path(p).expanduser() for p in request.attachment_paths]
            attachments = read_attachment_files(paths)
            with unit_of_work(self.engine) as session:
                reply_to_customer(
                    session, actor=self.user, key=self.key, body=request.comment,
                    channel=request.value, attachments=attachments,
                )  # fmt: skip

        def sent(request: ChangeRequest | None) -> None:
            if request is not None:
                queued = _("Message to the customer of {key} queued").format(key=self.key)
                self.notify(queued, markup=False)
                self.reload()

        dialog = ChangeDialog(
            _("Message the customer of {key}: they will read this").format(key=self.key),
            save=send,
            choices=choices,
            current=choices[0][1],
            with_attachments=True,
            comment_prompt=_("Message to the customer (required)"),
            words=message_words(),
            focus_comment=True,
        )
        self.app.push_screen(dialog, sent)

    # -- save an attachment ---------------------------------------------------------------

    def action_save_attachment(self) -> None:
        view = self._loaded()
        if view is None:
            return
        files = [a for item in view.conversation for a in item.attachments]
        if not files:
            none = _("{key} has no attachments").format(key=self.key)
            self.notify(none, severity="warning", markup=False)
            return
        if len(files) == 1:
            self._ask_path(files[0])
            return
        listed = [attachment_text(a) for a in files[:LISTED_FILES]]
        if len(files) > LISTED_FILES:
            more = len(files) - LISTED_FILES
            listed.append(ngettext("… and {n} more", "… and {n} more", more).format(n=more))

        def chosen(answer: str | None) -> None:
            if answer is None:
                return
            if not answer.isdigit() or not 1 <= int(answer) <= len(files):
                wrong = _("No attachment {answer}: type 1 to {last}")
                self.notify(wrong.format(answer=answer, last=len(files)),
                            severity="error", markup=False)  # fmt: skip
                return
            self._ask_path(files[int(answer) - 1])

        prompt = PromptDialog(
            _("Save which attachment of {key}? (1 to {last})").format(
                key=self.key, last=len(files)
            ),
            hint=printable("\n".join(listed)),
        )
        self.app.push_screen(prompt, chosen)

    def _ask_path(self, item: AttachmentItem) -> None:
        def answered(path: str | None) -> None:
            if path is not None:
                self.save_attachment(item.n, path, replace=False)

        prompt = PromptDialog(
            printable(_("Save {file} to").format(file=attachment_text(item)), lines=False),
            value=f"~/{suggested_file_name(item)}",
            hint=_("A file path; written owner-only (0600). An existing file is asked about."),
        )
        self.app.push_screen(prompt, answered)

    def save_attachment(self, n: int, path_text: str, *, replace: bool) -> None:
        def save() -> str | None:
            """What to say once saved; None: the file exists (and ``replace`` is not set)."""
            path = Path(path_text).expanduser()
            with read_session(self.engine) as session:
                item, content = attachment_content(session, get_ticket(session, self.key), n)
            try:
                save_user_file(path, content, replace=replace)
            except Conflict:
                return None
            return printable(
                _("Saved {name} to {path}").format(name=item.name, path=path), lines=False
            )

        def saved(said: str | None) -> None:
            if said is None:
                self._ask_replace(n, path_text)
            else:
                self.notify(said, markup=False)

        self.in_thread(save, saved, group="ticket-attachment", exclusive=False)

    def _ask_replace(self, n: int, path_text: str) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self.save_attachment(n, path_text, replace=True)

        question = _("{path} already exists. Replace it?").format(path=path_text)
        yes = _("Enter or y: replace it")
        self.app.push_screen(ConfirmDialog(printable(question, lines=False), yes=yes), confirmed)

    # -- the customer's other tickets -------------------------------------------------------

    def action_customer_history(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "tab-history"
        self.query_one("#history", DataTable).focus()

    @on(DataTable.RowSelected, "#history")
    def _open_other_ticket(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.desk.open_ticket(event.row_key.value)
