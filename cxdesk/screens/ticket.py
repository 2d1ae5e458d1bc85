"""The ticket screen: fields, ticket data, customer comment, the escalation timeline, the
Conversation, Customer history and Log tabs, and edits.

The Conversation shows internal notes, replies to the customer (with their delivery status)
and the customer's messages (with their sender), each badged in words, and their attachments
numbered; ``m`` messages the customer, ``d`` saves an attachment, ``h`` goes to the
customer's other tickets (Enter opens one): ``screens.ticket_conversation``. ``n`` marks a
no-show (the customer called is not there): ``screens.ticket_noshow``. ``M`` applies a macro
from a filterable picker: ``screens.macro_picker``.

Each action key opens a ``ChangeDialog`` (every update needs a comment); the dialog stores the
change in a worker through ``unit_of_work`` so workflows react, and stays open with the reason
when it is refused (a missing comment, a file too big...). The ticket is read again after a
save and whenever the desk changed. Customer name, email and created date are shown as plain
text: they are never editable.

Keys that apply only sometimes are in the Footer only then (``check_action``): ``a`` moves an
escalated ticket along its timeline; the person who submitted the ticket gets ``x`` (close it)
while it is open, then ``f`` (leave feedback) once it is closed, then a thank-you. Whatever
the Footer shows, the store decides: an action forced anyway is refused with one line.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static, TabbedContent, TabPane

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.i18n import N_, _
from cxdesk.labels import event_detail, event_what, field_value, label, owner_choices
from cxdesk.screens.base import DeskChanged, shown_time
from cxdesk.screens.macro_picker import TicketMacroKey
from cxdesk.screens.ticket_noshow import TicketNoShowKey
from cxdesk.screens.ticket_presence import TicketPresence
from cxdesk.screens.ticket_undo import UndoPullKeys
from cxdesk.screens.ticket_view import (
    CUSTOMER_FIELDS,
    FIELDS,
    TicketView,
    conversation_entries,
    estimate_text,
    field_text,
    read_ticket_view,
    requester_note,
    timeline_steps,
)
from cxdesk.store.escalation_steps import SETTABLE_STEPS, parse_estimate, set_escalation_step
from cxdesk.store.models import Priority
from cxdesk.store.ticket_versions import StaleVersion
from cxdesk.store.tickets import (
    add_comment,
    close_by_requester,
    leave_feedback,
    read_attachment_files,
    update_ticket,
)
from cxdesk.text import printable
from cxdesk.widgets.change_dialog import ChangeDialog, ChangeRequest, SaveChange
from cxdesk.widgets.confirm_dialog import ConfirmDialog
from cxdesk.widgets.conversation import Conversation
from cxdesk.widgets.sla import SlaTargets
from cxdesk.widgets.table import DeskTable
from cxdesk.widgets.timeline import Timeline

NOBODY = N_("(nobody: back to the queue)")
RATINGS = [(N_("5 - great"), "5"), ("4", "4"), ("3", "3"), ("2", "2"), (N_("1 - poor"), "1")]
# Shown only when they apply (check_action): the requester's and the escalation's keys.
REQUESTER_ACTIONS = ("close_ticket", "feedback")
TABS = ("tab-conversation", "tab-history", "tab-log")
HISTORY_COLUMNS = (N_("Key"), N_("Title"), N_("Status"), N_("Created"))
LOG_COLUMNS = (N_("At"), N_("Who"), N_("What"), N_("From"), N_("To"), N_("Detail"))


def aligned(lines: list[tuple[str, str]], at_least: int = 0) -> str:
    """``label value`` lines with the values in one column (labels padded to ``at_least``
    cells or the widest), in terminal cells: a Japanese label is twice as wide as its
    characters."""
    width = max([at_least, *(cell_len(label) for label, _value in lines)])
    return "\n".join(f"{label}{' ' * (width - cell_len(label))} {value}" for label, value in lines)


class TicketScreen(TicketMacroKey, UndoPullKeys, TicketNoShowKey):
    DEFAULT_CSS = """
    TicketScreen #ticket-body { height: 1fr; padding: 0 1; }
    TicketScreen #ticket-title { text-style: bold; margin-bottom: 1; }
    TicketScreen #columns { height: auto; }
    TicketScreen #columns > Vertical { width: 1fr; height: auto; padding-right: 2; }
    TicketScreen .section { text-style: bold; }
    TicketScreen #comment-section { margin-top: 1; }
    TicketScreen TabbedContent { height: auto; min-height: 10; margin-top: 1; }
    TicketScreen DataTable { height: auto; max-height: 20; }
    TicketScreen #escalation { height: auto; margin-top: 1; }
    TicketScreen #requester-note { margin-top: 1; color: $warning; text-style: bold; }
    TicketScreen #undo-note { color: $warning; text-style: bold; }
    """
    BINDINGS = [
        Binding("u", "undo_pull", N_("Undo pull")),  # only for a while after the pull
        # The Footer shows them in this order: the most used first, so that an 80-column
        # terminal shows them too (also in Japanese or French); Back (Escape) last.
        Binding("r", "resolve", N_("Resolve")),
        Binding("e", "escalate", N_("Escalate")),
        Binding("m", "message_customer", N_("Message customer")),
        Binding("c", "comment", N_("Internal note")),
        Binding("s", "status", N_("Status")),
        Binding("p", "priority", N_("Priority")),
        Binding("t", "team", N_("Team+owner")),
        Binding("o", "owner", N_("Owner")),
        Binding("M", "macro", N_("Macro")),  # a picker of the team's macros (macro_picker)
        Binding("a", "escalation_step", N_("Escalation step")),
        Binding("x", "close_ticket", N_("Close ticket")),
        Binding("f", "feedback", N_("Leave feedback")),
        Binding("d", "save_attachment", N_("Save file")),
        Binding("h", "customer_history", N_("History")),
        Binding("n", "noshow", N_("No-show")),
        Binding("escape", "back", N_("Back")),
        Binding("l", "switch_tab", N_("Next tab"), show=False),
    ]

    def __init__(self, key: str, *, pulled_at: datetime | None = None) -> None:
        super().__init__()
        self.key = key
        self.pulled_at = pulled_at
        self.view: TicketView | None = None
        """The ticket as last read; None until the first read finishes."""
        self.editing_version: int | None = None
        """The version the open dialog's user saw (``store.ticket_versions``): a save over a
        newer one is refused; after a refusal, the version then shown."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="ticket-body"):
            loading = _("{key}  (loading…)").format(key=self.key)
            yield Label(loading, id="ticket-title", markup=False)
            yield TicketPresence(self.key, id="presence")  # who else is on it
            yield Static("", id="undo-note", markup=False)
            with Horizontal(id="columns"):
                with Vertical():
                    yield Label(_("Ticket"), classes="section")
                    yield Static("", id="fields", markup=False)
                with Vertical():
                    yield Label(_("Customer (read-only)"), classes="section")
                    yield Static("", id="customer", markup=False)
                with Vertical():
                    yield Label(_("Ticket data"), classes="section")
                    yield Static("", id="data", markup=False)
            yield SlaTargets(self.desk.clock, id="sla")
            yield Label(_("Customer comment"), classes="section", id="comment-section")
            yield Static("", id="customer-comment", markup=False)
            with Vertical(id="escalation"):
                yield Label(_("Escalation"), classes="section")
                yield Timeline(id="timeline")
            yield Static("", id="requester-note", markup=False)
            with TabbedContent(id="tabs"):
                with TabPane(_("Conversation"), id="tab-conversation"):
                    yield Conversation(id="conversation")
                with TabPane(_("Customer history"), id="tab-history"):
                    history: DataTable[str] = DeskTable(id="history", cursor_type="row")
                    history.add_columns(*(_(title) for title in HISTORY_COLUMNS))
                    yield history
                with TabPane(_("Log"), id="tab-log"):
                    log: DataTable[str] = DeskTable(id="log", cursor_type="row")
                    log.add_columns(*(_(title) for title in LOG_COLUMNS))
                    yield log
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#escalation").display = False
        self.query_one("#requester-note").display = False
        self.start_undo_window()
        self.load()

    def _viewer_id(self) -> int | None:
        user = self.desk.user
        return user.id if user is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The escalation and requester keys only when they apply; the rest always."""
        view = self.view
        if action == "undo_pull":
            return self.undo_open()
        if action == "escalation_step":
            return view is not None and view.record["status"] == "escalated"
        if action == "save_attachment":
            return view is not None and view.attachment_count > 0
        if action == "customer_history":
            return view is not None and bool(view.history)
        if action == "noshow":
            return self.noshow_applies()
        if action == "macro":
            return self.macro_applies()
        if action in REQUESTER_ACTIONS:
            if view is None or view.requester_id is None:
                return False
            if view.requester_id != self._viewer_id():
                return False
            if action == "close_ticket":
                return not view.closed
            return view.closed and view.feedback_rating is None
        return True

    def reload(self) -> None:
        self.load()

    def load(self) -> None:
        self.in_thread(lambda: read_ticket_view(self.engine, self.key), self._show,
                       group="ticket-load", reading=True)  # fmt: skip

    def _show(self, view: TicketView) -> None:
        if view == self.view:
            return  # nothing changed: keep the tables' cursors where they are
        self.view = view
        record = view.record
        title = printable(f"{record['key']}  {record['title']}", lines=False)
        self.query_one("#ticket-title", Label).update(title)
        self.query_one("#fields", Static).update(
            aligned(
                [(_(label), field_text(record, name, view.names)) for label, name in FIELDS], 12
            )
        )
        self.query_one("#customer", Static).update(
            aligned([(_(label), field_text(record, name)) for label, name in CUSTOMER_FIELDS], 9)
        )
        data = [(printable(name, lines=False), printable(value)) for name, value in view.data]
        self.query_one("#data", Static).update(aligned(data) or _("(none)"))
        self.query_one("#customer-comment", Static).update(
            printable(str(record["customer_comment"]))
            if record["customer_comment"]
            else _("(none)")
        )
        escalation = self.query_one("#escalation")
        escalation.display = view.timeline is not None
        if view.timeline is not None:
            self.query_one("#timeline", Timeline).show(
                timeline_steps(view.timeline), note=estimate_text(view.timeline)
            )
        self.query_one(SlaTargets).show(view.sla)
        note = requester_note(view, self._viewer_id())
        self.query_one("#requester-note", Static).update(printable(note))
        self.query_one("#requester-note").display = bool(note)
        self.refresh_bindings()
        self.query_one("#conversation", Conversation).show(conversation_entries(view.conversation))
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.get_tab("tab-history").label = _("Customer history ({n})").format(n=len(view.history))
        history: DataTable[str] = self.query_one("#history", DataTable)
        history.clear()
        for other in view.history:
            history.add_row(other.key, other.title, label(other.status),
                            shown_time(other.created_at), key=other.key)  # fmt: skip
        log: DataTable[str] = self.query_one("#log", DataTable)
        log.clear()
        for event in view.log:
            log.add_row(
                shown_time(event["at"]),
                _("system") if event["who"] == "system" else str(event["who"]),  # no actor
                event_what(event["kind"], event["field"]),
                field_value(event["field"], event["from"], view.names),
                field_value(event["field"], event["to"], view.names),
                event_detail(event["kind"], event["detail"]),
            )

    # -- actions: each asks for a comment in a dialog that saves it ---------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_switch_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = TABS[(TABS.index(tabs.active) + 1) % len(TABS)]

    def shown_version(self) -> int | None:
        return int(str(self.view.record["version"])) if self.view is not None else None

    def _open_dialog(self, title: str, save: SaveChange, **options: object) -> None:
        shown = self.shown_version()
        if shown is None:
            self.notify(_("The ticket is still loading"), severity="warning")
            return

        def saved(request: ChangeRequest | None) -> None:
            if request is not None:
                self.notify(_("{key} saved").format(key=self.key), markup=False)
                self.load()

        self.editing_version = shown
        self.app.push_screen(ChangeDialog(title, save=save, **options), saved)  # type: ignore[arg-type]

    def _ask(self, field: str, title: str, choices: list[tuple[str, str]]) -> None:
        current = str(self.view.record.get(field) or "") if self.view else ""

        def save(request: ChangeRequest) -> None:
            self.store_change({field: request.value or ""}, request)

        self._open_dialog(title, save, choices=choices, current=current)

    def action_status(self) -> None:
        statuses = self.view.statuses if self.view else []
        self._ask(
            "status", _("Status of {key}").format(key=self.key), [(label(s), s) for s in statuses]
        )

    def action_priority(self) -> None:
        self._ask(
            "priority",
            _("Priority of {key}").format(key=self.key),
            [(label(p), p) for p in Priority],
        )

    def action_owner(self) -> None:
        members = self.view.team_members if self.view else []
        names = self.view.names if self.view else {}
        choices = [(_(NOBODY), ""), *owner_choices(members, names)]
        title = _("Owner of {key} (members of its team)").format(key=self.key)
        self._ask("owner", title, choices)

    def action_team(self) -> None:
        if self.view is None:
            return
        record = self.view.record

        def save(request: ChangeRequest) -> None:
            self.store_change({"team": request.value or "", "owner": request.owner}, request)

        self._open_dialog(
            _("Move {key} to team, with its owner").format(key=self.key),
            save,
            choices=[(t, t) for t in self.view.members_by_team],
            current=str(record["team"]),
            members_by_team=self.view.members_by_team,
            names=self.view.names,
            current_owner=str(record["owner"] or ""),
        )

    def action_resolve(self) -> None:
        title = _("Resolve {key}").format(key=self.key)
        self._open_dialog(title, partial(self.store_change, {"status": "resolved"}))

    def action_escalate(self) -> None:
        title = _("Escalate {key}").format(key=self.key)
        self._open_dialog(title, partial(self.store_change, {"status": "escalated"}))

    def action_comment(self) -> None:
        self._open_dialog(
            _("Internal note on {key}: the customer never sees it").format(key=self.key),
            partial(self.store_change, None),
            with_attachments=True,
        )

    def action_escalation_step(self) -> None:
        timeline = self.view.timeline if self.view else None
        estimate = timeline.estimate.isoformat() if timeline and timeline.estimate else ""

        def save(request: ChangeRequest) -> None:
            with unit_of_work(self.engine) as session:
                set_escalation_step(
                    session, actor=self.user, key=self.key, step=request.value,
                    estimate=parse_estimate(request.extra), comment=request.comment,
                )  # fmt: skip

        title = (
            _("Escalation step of {key} (now: {step})").format(
                key=self.key, step=_(timeline.current)
            )
            if timeline
            else _("Escalation step of {key}").format(key=self.key)
        )
        self._open_dialog(
            title,
            save,
            choices=[(_(step), step) for step in SETTABLE_STEPS],
            current=timeline.current if timeline else None,
            extra=(_("Estimated resolution date, YYYY-MM-DD (optional)"), estimate),
        )

    def action_close_ticket(self) -> None:
        question = _("Close {key}? You can leave feedback once it is closed.").format(key=self.key)
        self.app.push_screen(ConfirmDialog(question, yes=_("Enter or y: close it")), self._close)

    def _close(self, confirmed: bool | None) -> None:
        if confirmed:
            self.close_ticket()

    def close_ticket(self) -> None:
        def close() -> None:
            with unit_of_work(self.engine) as session:
                close_by_requester(session, actor=self.user, key=self.key)

        def closed(_nothing: None) -> None:
            self.notify(_("{key} closed").format(key=self.key), markup=False)
            self.load()

        self.in_thread(close, closed, group="ticket-close")

    def action_feedback(self) -> None:
        def save(request: ChangeRequest) -> None:
            with unit_of_work(self.engine) as session:
                leave_feedback(
                    session, actor=self.user, key=self.key, rating=int(request.value or 0),
                    comment=request.comment,
                )  # fmt: skip

        self._open_dialog(
            _("Your feedback on {key}: a rating and a comment").format(key=self.key),
            save,
            choices=[(_(shown), value) for shown, value in RATINGS],
            comment_prompt=_("Comment (optional); Enter sends"),
        )

    def store_change(self, changes: dict[str, str | None] | None, request: ChangeRequest) -> None:
        """Store one change with its comment (blocking: the dialog runs it in a worker).

        ``changes`` None: a plain comment (with attachments); otherwise an update.
        """
        paths = [Path(p).expanduser() for p in request.attachment_paths]
        attachments = read_attachment_files(paths)
        with unit_of_work(self.engine) as session:
            if changes is None:
                add_comment(
                    session, actor=self.user, key=self.key, body=request.comment,
                    attachments=attachments,
                )  # fmt: skip
            else:
                try:
                    update_ticket(
                        session, actor=self.user, key=self.key, comment=request.comment,
                        changes=changes, attachments=attachments,
                        if_version=self.editing_version,
                    )  # fmt: skip
                except StaleVersion as stale:  # the dialog shows why; Enter again saves
                    self.editing_version = stale.current
                    self.post_message(DeskChanged())  # read it again, as it is now
                    raise
